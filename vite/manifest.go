package vite

import (
	"bytes"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// DefaultManifestPath is where vite build --manifest (build.manifest: true)
// writes the manifest, relative to the build's outDir.
const DefaultManifestPath = ".vite/manifest.json"

// maxManifest is the largest manifest ReadManifest reads; a large app's is a
// few hundred kilobytes.
const maxManifest = 64 << 20

// Errors of the manifest that callers may check with errors.Is.
var (
	// ErrUnknownEntry: an entry that the manifest has no entry chunk for.
	ErrUnknownEntry = errors.New("vitehost/vite: entry not in the manifest")
	// ErrInvalidManifest: the manifest is not the JSON Vite writes.
	ErrInvalidManifest = errors.New("vitehost/vite: invalid manifest")
)

// ManifestOptions configures ReadManifest. A nil *ManifestOptions means the
// defaults.
type ManifestOptions struct {
	// Path is the manifest's path in the build's file system; "" means
	// DefaultManifestPath.
	Path string
	// Base is the public path the built files are served under, Vite's
	// base: the tags' URLs are Base followed by the manifest's file names.
	// "" means "/".
	Base string
	// Integrity adds an integrity attribute (subresource integrity) to
	// every script, stylesheet and modulepreload tag: the chunk's integrity
	// field when the manifest has one (as integrity plugins write it), else
	// the SHA-384 of the file, computed once by ReadManifest.
	Integrity bool
}

// manifestChunk is one record of Vite's manifest (vite/src/node/plugins/
// manifest.ts, ManifestChunk), with the integrity field that SRI plugins
// add.
type manifestChunk struct {
	File           string   `json:"file"`
	Src            string   `json:"src"`
	Name           string   `json:"name"`
	IsEntry        bool     `json:"isEntry"`
	IsDynamicEntry bool     `json:"isDynamicEntry"`
	Imports        []string `json:"imports"`
	DynamicImports []string `json:"dynamicImports"`
	CSS            []string `json:"css"`
	Assets         []string `json:"assets"`
	Integrity      string   `json:"integrity"`
}

// Manifest is Vite's build manifest (.vite/manifest.json), read by
// ReadManifest: it gives the tags that load an entry of the build. A
// Manifest never changes after ReadManifest; its methods may be called from
// any number of goroutines.
type Manifest struct {
	chunks    map[string]manifestChunk
	base      string
	integrity map[string]string // file -> integrity value; nil without Options.Integrity
}

// ReadManifest reads the manifest of the build in fsys, the build's output
// directory (os.DirFS("dist"), or an embed.FS under its dist directory as
// fs.Sub gives it). With Integrity, it also reads every script and
// stylesheet the manifest names that has no integrity field.
func ReadManifest(fsys fs.FS, opts *ManifestOptions) (*Manifest, error) {
	var o ManifestOptions
	if opts != nil {
		o = *opts
	}
	if o.Path == "" {
		o.Path = DefaultManifestPath
	}
	data, err := readLimited(fsys, o.Path, maxManifest)
	if err != nil {
		return nil, fmt.Errorf("vitehost/vite: read manifest: %w", err)
	}
	m, err := ParseManifest(data, o.Base)
	if err != nil {
		return nil, err
	}
	if o.Integrity {
		if m.integrity, err = integrityOf(fsys, m.chunks); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ParseManifest parses the content of a manifest whose files are served
// under base ("" means "/"), without integrity attributes.
func ParseManifest(data []byte, base string) (*Manifest, error) {
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidManifest)
	}
	var chunks map[string]manifestChunk
	if err := json.Unmarshal(data, &chunks); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidManifest, err)
	}
	for key, c := range chunks {
		if c.File == "" {
			return nil, fmt.Errorf("%w: %q has no file", ErrInvalidManifest, key)
		}
		for _, imp := range c.Imports {
			if _, ok := chunks[imp]; !ok {
				return nil, fmt.Errorf("%w: %q imports %q, which it lacks", ErrInvalidManifest, key, imp)
			}
		}
	}
	if base == "" {
		base = "/"
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	return &Manifest{chunks: chunks, base: base}, nil
}

// Entries returns the names of the manifest's entry chunks (the build's
// inputs, such as "index.html" or "src/main.ts"), sorted.
func (m *Manifest) Entries() []string {
	var out []string
	for key, c := range m.chunks {
		if c.IsEntry {
			out = append(out, key)
		}
	}
	slices.Sort(out)
	return out
}

// File returns the URL of the built file of a manifest key (an entry, a
// module or an asset imported by the source, such as "src/logo.svg"), and
// whether the manifest has it.
func (m *Manifest) File(name string) (string, bool) {
	c, ok := m.chunks[strings.TrimPrefix(name, "/")]
	if !ok {
		return "", false
	}
	return m.base + c.File, true
}

// Tags returns the HTML that loads the given entries (keys of the
// manifest, such as "src/main.ts"; a leading slash is ignored), in the
// order Vite's own index.html has them: each entry's module script, a
// modulepreload link for every chunk the entries import statically,
// directly or through other chunks, and the stylesheets of those chunks
// and of the entries, dependencies first. A file shared by several entries
// appears once; dynamic imports are neither preloaded nor styled, they load
// their own CSS when they run. A CSS-only entry gives its stylesheet. nonce,
// when not "", is set on every tag (a Content-Security-Policy nonce). An
// entry the manifest lacks gives an error wrapping ErrUnknownEntry.
func (m *Manifest) Tags(nonce string, entries ...string) (template.HTML, error) {
	var scripts, preloads, styles []string
	seen := map[string]bool{} // manifest keys whose imports were walked
	done := map[string]bool{} // files already in the output
	var walk func(key string)
	walk = func(key string) {
		if seen[key] {
			return
		}
		seen[key] = true
		c := m.chunks[key]
		for _, imp := range c.Imports {
			walk(imp)
			ic := m.chunks[imp]
			if !done[ic.File] {
				done[ic.File] = true
				preloads = append(preloads, ic.File)
			}
		}
		for _, css := range c.CSS {
			if !done[css] {
				done[css] = true
				styles = append(styles, css)
			}
		}
	}
	for _, e := range entries {
		key := strings.TrimPrefix(e, "/")
		c, ok := m.chunks[key]
		if !ok || (!c.IsEntry && !c.IsDynamicEntry) {
			return "", fmt.Errorf("%w: %q (the manifest's entries are %s)", ErrUnknownEntry, e, strings.Join(m.Entries(), ", "))
		}
		walk(key)
		if done[c.File] {
			continue
		}
		done[c.File] = true
		if isCSS(c.File) {
			styles = append(styles, c.File)
		} else {
			scripts = append(scripts, c.File)
		}
	}
	var b strings.Builder
	for _, f := range scripts {
		m.tag(&b, `<script type="module" crossorigin src="`, f, nonce, `></script>`)
	}
	for _, f := range preloads {
		m.tag(&b, `<link rel="modulepreload" crossorigin href="`, f, nonce, `>`)
	}
	for _, f := range styles {
		m.tag(&b, `<link rel="stylesheet" crossorigin href="`, f, nonce, `>`)
	}
	return template.HTML(b.String()), nil
}

// tag writes one tag for file: open, the file's URL and its closing
// quote, the nonce and integrity attributes, end.
func (m *Manifest) tag(b *strings.Builder, open, file, nonce, end string) {
	if b.Len() > 0 {
		b.WriteByte('\n')
	}
	b.WriteString(open)
	b.WriteString(template.HTMLEscapeString(m.base + file))
	b.WriteByte('"')
	if nonce != "" {
		b.WriteString(` nonce="`)
		b.WriteString(template.HTMLEscapeString(nonce))
		b.WriteByte('"')
	}
	if v := m.integrity[file]; v != "" {
		b.WriteString(` integrity="`)
		b.WriteString(template.HTMLEscapeString(v))
		b.WriteByte('"')
	}
	b.WriteString(end)
}

// isCSS reports whether a built file is a stylesheet.
func isCSS(file string) bool { return path.Ext(file) == ".css" }

// integrityOf returns the integrity value of every script and stylesheet
// the manifest names: its own field when it has one, else the SHA-384 of
// the file in fsys.
func integrityOf(fsys fs.FS, chunks map[string]manifestChunk) (map[string]string, error) {
	out := map[string]string{}
	for _, c := range chunks {
		if c.Integrity != "" {
			out[c.File] = c.Integrity
		}
	}
	add := func(file string) error {
		if _, ok := out[file]; ok {
			return nil
		}
		data, err := fs.ReadFile(fsys, file)
		if err != nil {
			return fmt.Errorf("vitehost/vite: integrity of %s: %w", file, err)
		}
		sum := sha512.Sum384(data)
		out[file] = "sha384-" + base64.StdEncoding.EncodeToString(sum[:])
		return nil
	}
	for _, c := range chunks {
		if path.Ext(c.File) == ".js" || path.Ext(c.File) == ".mjs" || isCSS(c.File) {
			if err := add(c.File); err != nil {
				return nil, err
			}
		}
		for _, css := range c.CSS {
			if err := add(css); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// readLimited reads the file name of fsys, failing when it is larger than
// limit.
func readLimited(fsys fs.FS, name string, limit int64) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(io.LimitReader(f, limit+1)); err != nil {
		return nil, err
	}
	if int64(b.Len()) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, limit)
	}
	return b.Bytes(), nil
}
