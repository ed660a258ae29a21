package request

import (
	"encoding/base64"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// TmpPrefix names the temporary files of atomic writes: no file of a
// client may have it.
const TmpPrefix = ".vitehost-tmp-"

// reserved are path components a client may not write: the shared
// dependency install is linked in as node_modules, and Vite's cache is the
// service's.
var reserved = map[string]bool{
	"node_modules": true,
	".vite-cache":  true,
	".git":         true,
}

// executedPrefixes name files that Node would load and run on the host if
// they were in the project: config files of Vite, its CSS pipeline and the
// package managers. They are dropped unless the operator opts in
// (Options.NoSandbox without AllowConfigFiles); the service builds the
// Vite config itself.
var executedPrefixes = []string{
	"vite.config.", "vitest.config.", "postcss.config.", "tailwind.config.",
	"svelte.config.", "babel.config.", "nuxt.config.", "astro.config.",
	".postcssrc", ".babelrc", ".npmrc", ".yarnrc", ".pnpmfile.", "bunfig.toml",
}

// IsExecuted reports whether the root-level file name is one Node would run.
func IsExecuted(name string) bool {
	if strings.Contains(name, "/") {
		return false // config files are looked up at the root only
	}
	for _, p := range executedPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// CleanPath checks a client-sent path and returns it unchanged when it is a
// plain relative path inside the project: forward slashes, no empty, "." or
// ".." component, no NUL or other control character, no backslash or colon
// (Windows drive letters and separators), no reserved component, at most
// maxLen bytes, and each component at most 255 bytes.
func CleanPath(name string, maxLen int) (string, error) {
	switch {
	case name == "":
		return "", Invalid(CodeBadPath, "empty file name")
	case len(name) > maxLen:
		return "", Invalid(CodeBadPath, "file name longer than %d bytes: %.40q...", maxLen, name)
	case !utf8.ValidString(name):
		return "", Invalid(CodeBadPath, "file name is not UTF-8: %q", name)
	case strings.HasPrefix(name, "/"):
		return "", Invalid(CodeBadPath, "absolute path %q: names are relative to the project root", name)
	}
	for _, r := range name {
		if r == 0 || r == '\\' || r == ':' || unicode.IsControl(r) {
			return "", Invalid(CodeBadPath, "file name %q contains %q", name, r)
		}
	}
	for _, c := range strings.Split(name, "/") {
		switch {
		case c == "" || c == ".":
			return "", Invalid(CodeBadPath, "file name %q has an empty or \".\" component", name)
		case c == "..":
			return "", Invalid(CodeBadPath, "file name %q leaves the project directory", name)
		case len(c) > 255:
			return "", Invalid(CodeBadPath, "file name %q has a component longer than 255 bytes", name)
		case reserved[c]:
			return "", Invalid(CodeBadPath, "file name %q: %s is managed by the service", name, c)
		case strings.HasPrefix(c, TmpPrefix):
			return "", Invalid(CodeBadPath, "file name %q: the prefix %s is reserved", name, TmpPrefix)
		}
	}
	if path.Clean(name) != name {
		return "", Invalid(CodeBadPath, "file name %q is not in clean form", name)
	}
	return name, nil
}

// Decode returns the bytes of the content of file name in encoding: "" or
// "utf-8" for text, "base64" (standard, unpadded or URL-safe) for binary.
func Decode(name, content, encoding string) ([]byte, error) {
	switch strings.ToLower(encoding) {
	case "", "utf-8", "utf8", "text":
		return []byte(content), nil
	case "base64":
		b, err := base64.StdEncoding.DecodeString(content)
		if err != nil {
			// Some clients send URL-safe or unpadded base64.
			if b2, err2 := base64.RawStdEncoding.DecodeString(strings.TrimRight(content, "=")); err2 == nil {
				return b2, nil
			}
			if b2, err2 := base64.RawURLEncoding.DecodeString(strings.TrimRight(content, "=")); err2 == nil {
				return b2, nil
			}
			return nil, Invalid(CodeBadEncoding, "file %q: content is not valid base64: %v", name, err)
		}
		return b, nil
	default:
		return nil, Invalid(CodeBadEncoding, "file %q: unknown encoding %q (use \"base64\" or none)", name, encoding)
	}
}
