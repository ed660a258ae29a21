package deps

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strings"
)

// Set is a normalized dependency set: package name to version spec, with
// dependencies and devDependencies merged (a preview installs both).
type Set map[string]string

// DefaultVite is the vite spec added to a dependency set that lacks one: a
// session cannot start without it.
const DefaultVite = "^8.0.0"

// maxDeps bounds the dependencies one package.json may declare.
const maxDeps = 300

// Parse reads the dependencies and devDependencies of a
// client-sent package.json and checks every name and spec: only registry
// packages, with exact versions, ranges or dist-tags. Git, GitHub, file,
// link, workspace and URL specs are refused. Scripts and every other field
// are ignored: nothing of the client's package.json runs.
func Parse(data []byte) (Set, error) {
	var pkg struct {
		Dependencies    map[string]json.RawMessage `json:"dependencies"`
		DevDependencies map[string]json.RawMessage `json:"devDependencies"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&pkg); err != nil {
		return nil, invalid(CodeBadJSON, "packageJson: %v", err)
	}
	deps := Set{}
	for _, m := range []map[string]json.RawMessage{pkg.Dependencies, pkg.DevDependencies} {
		for name, raw := range m {
			var spec string
			if err := json.Unmarshal(raw, &spec); err != nil {
				return nil, invalid(CodeBadDependency, "dependency %q: the version must be a string", name)
			}
			if err := checkPackageName(name); err != nil {
				return nil, err
			}
			if err := checkSpec(name, spec); err != nil {
				return nil, err
			}
			deps[name] = strings.TrimSpace(spec)
		}
	}
	if len(deps) > maxDeps {
		return nil, invalid(CodeBadDependency, "%d dependencies: at most %d", len(deps), maxDeps)
	}
	return deps, nil
}

// checkPackageName applies npm's rules for package names: at most 214
// characters, lowercase URL-safe characters, optionally one @scope/ prefix,
// not starting with a dot or an underscore.
func checkPackageName(name string) error {
	bad := func(why string) error {
		return invalid(CodeBadDependency, "dependency name %q: %s", name, why)
	}
	if name == "" || len(name) > 214 {
		return bad("must have 1 to 214 characters")
	}
	rest := name
	if strings.HasPrefix(name, "@") {
		scope, pkg, ok := strings.Cut(name[1:], "/")
		if !ok || scope == "" || pkg == "" {
			return bad("a scoped name has the form @scope/name")
		}
		if err := namePart(scope); err != "" {
			return bad(err)
		}
		rest = pkg
	}
	if err := namePart(rest); err != "" {
		return bad(err)
	}
	return nil
}

func namePart(s string) string {
	if s[0] == '.' || s[0] == '_' {
		return "must not start with . or _"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return "only lowercase letters, digits and - . _ ~ are allowed"
		}
	}
	return ""
}

// WithDefaults returns a copy of d with vite added when it is missing.
func (d Set) WithDefaults() Set {
	out := make(Set, len(d)+1)
	for k, v := range d {
		out[k] = v
	}
	if _, ok := out["vite"]; !ok {
		out["vite"] = DefaultVite
	}
	return out
}

// Key returns a short hash of the dependency set as declared: sets with
// the same names and specs share one resolution (and sets that resolve to
// the same packages share one install, see cache.go).
func (d Set) Key() string {
	names := make([]string, 0, len(d))
	for n := range d {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		h.Write([]byte(n))
		h.Write([]byte{0})
		h.Write([]byte(d[n]))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// PackageJSON returns the package.json that the install and the session
// directory get: the dependency set and nothing else that npm would act on.
func (d Set) PackageJSON() []byte {
	b, _ := json.MarshalIndent(map[string]any{
		"name":         "vitehost-preview",
		"private":      true,
		"type":         "module",
		"dependencies": map[string]string(d),
	}, "", "  ")
	return append(b, '\n')
}

// Has reports whether the set declares the package.
func (d Set) Has(name string) bool { _, ok := d[name]; return ok }
