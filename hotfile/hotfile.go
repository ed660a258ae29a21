// Package hotfile reads, writes and watches hot files: the small text files in
// which a front-end dev server publishes where it listens.
//
// The format is the one laravel-vite-plugin and litestar-vite use: a hot file
// holds one absolute http or https URL, plain text, with an optional trailing
// newline. A base path in the URL (http://localhost:5173/build) is kept. When
// the dev server's HMR WebSocket listens on a port of its own, a companion
// file named by [HMRPath] (the hot file's path plus ".hmr") holds that URL.
//
// A dev server that listens on a Unix socket instead of a port (one in a
// sandbox without a network) is named by a URL with the scheme "unix" whose
// path is the socket's absolute path, unix:///run/dev/http.sock, as [UnixURL]
// makes it. Such a URL has no base path: requests to it keep their own path.
//
// Writers replace files atomically (a temporary file in the same directory,
// then a rename), so a reader never sees half a URL. A [Watcher] follows both
// files and keeps the current [Targets] readable at the cost of one atomic
// load.
package hotfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// UnixScheme is the scheme of a URL that names a Unix socket.
const UnixScheme = "unix"

// HMRSuffix is appended to a hot file's path to name its HMR companion.
const HMRSuffix = ".hmr"

// MaxSize is the largest hot file Read accepts; a URL is far shorter, and a
// larger file is not a hot file.
const MaxSize = 8 << 10

// ErrInvalid is returned, wrapped with the details, for content that is not
// one absolute http, https or unix URL.
var ErrInvalid = errors.New("vitehost/hotfile: invalid hot file")

// errEmpty is the reason for an empty hot file, which the Watcher does not
// report as an error: a writer that truncates before it writes shows an
// empty file for a moment.
var errEmpty = errors.New("empty")

// HMRPath returns the path of the HMR companion of the hot file at path.
func HMRPath(path string) string { return path + HMRSuffix }

// UnixURL returns the URL that names the Unix socket at path, which must be
// absolute and clean for Write to accept the URL: unix:///run/dev/http.sock.
func UnixURL(path string) *url.URL {
	return &url.URL{Scheme: UnixScheme, Path: path}
}

// Parse parses the content of a hot file: surrounding white space is trimmed,
// and what remains must be one absolute http or https URL with a host, or a
// unix URL whose path is a socket's absolute, clean path (unix:///a/http.sock
// or unix:/a/http.sock), with neither a query, a fragment nor user
// information.
func Parse(data []byte) (*url.URL, error) {
	u, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return u, nil
}

// parse returns the URL or the reason why data is not a hot file.
func parse(data []byte) (*url.URL, error) {
	s := string(bytes.TrimSpace(data))
	if s == "" {
		return nil, errEmpty
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return nil, errors.New("more than one line or word")
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme == UnixScheme {
		if err := checkUnix(s, u); err != nil {
			return nil, err
		}
		return u, nil
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("scheme %q is not http, https or unix", u.Scheme)
	case u.Opaque != "" || u.Host == "":
		return nil, fmt.Errorf("%q has no host", s)
	case u.Hostname() == "":
		return nil, fmt.Errorf("%q has an empty host name", s)
	case u.User != nil:
		return nil, fmt.Errorf("%q carries user information", s)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("%q has a query or fragment", s)
	}
	if p := u.Port(); p != "" {
		if err := checkPort(p); err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
	}
	return u, nil
}

// checkUnix says what makes u, parsed from s, not a unix URL that names a
// socket.
func checkUnix(s string, u *url.URL) error {
	switch {
	case u.Opaque != "":
		return fmt.Errorf("%q: a unix URL holds an absolute path (unix:///path)", s)
	case u.Host != "" || u.User != nil:
		return fmt.Errorf("%q: a unix URL has no host", s)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return fmt.Errorf("%q has a query or fragment", s)
	case !strings.HasPrefix(u.Path, "/") || path.Clean(u.Path) != u.Path || u.Path == "/":
		return fmt.Errorf("%q: socket path %q is not absolute and clean", s, u.Path)
	case strings.ContainsRune(u.Path, 0):
		return fmt.Errorf("%q: socket path holds a NUL byte", s)
	}
	return nil
}

func checkPort(p string) error {
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return fmt.Errorf("port %q is not a number", p)
		}
		n = n*10 + int(c-'0')
		if n > 65535 {
			return fmt.Errorf("port %q is out of range", p)
		}
	}
	if n == 0 {
		return fmt.Errorf("port %q is out of range", p)
	}
	return nil
}

// Read reads and parses the hot file at path. A missing file gives an error
// that satisfies errors.Is(err, fs.ErrNotExist); content that is not a URL
// gives an error that names the path and wraps [ErrInvalid].
func Read(path string) (*url.URL, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("vitehost/hotfile: read %s: %w", path, err)
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w %s: larger than %d bytes", ErrInvalid, path, MaxSize)
	}
	u, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrInvalid, path, err)
	}
	return u, nil
}

// Write writes u to the hot file at path atomically: the URL and a newline go
// to a temporary file in the same directory, which then replaces path. The
// directory is created when missing. u must be a URL that Parse accepts, such
// as one made by UnixURL.
func Write(path string, u *url.URL) error {
	if u == nil {
		return fmt.Errorf("%w: write %s: nil URL", ErrInvalid, path)
	}
	s := u.String()
	if _, err := parse([]byte(s)); err != nil {
		return fmt.Errorf("%w: write %s: %w", ErrInvalid, path, err)
	}
	return WriteFile(path, []byte(s+"\n"), 0o644)
}

// WriteFile writes data to path atomically through a temporary file in the
// same directory and a rename, creating the directory when missing.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("vitehost/hotfile: write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("vitehost/hotfile: write %s: %w", path, err)
	}
	name := tmp.Name()
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name, path)
	}
	if err != nil {
		os.Remove(name)
		return fmt.Errorf("vitehost/hotfile: write %s: %w", path, err)
	}
	return nil
}

// Remove removes the hot file at path. A file that does not exist is not an
// error: the outcome, no hot file, is the same.
func Remove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("vitehost/hotfile: %w", err)
	}
	return nil
}
