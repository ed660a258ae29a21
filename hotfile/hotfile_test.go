package hotfile_test

import (
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/hotfile"
	"github.com/vitehost/vitehost/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func TestParse(t *testing.T) {
	tests := []struct {
		name, in, want, err string
	}{
		{name: "plain", in: "http://localhost:5173", want: "http://localhost:5173"},
		{name: "trailing newline", in: "http://localhost:5173\n", want: "http://localhost:5173"},
		{name: "crlf and spaces", in: "  http://127.0.0.1:5173\r\n", want: "http://127.0.0.1:5173"},
		{name: "laravel base path kept", in: "http://localhost:5173/build", want: "http://localhost:5173/build"},
		{name: "https", in: "https://dev.example.com:8443/", want: "https://dev.example.com:8443/"},
		{name: "ipv6", in: "http://[::1]:5173", want: "http://[::1]:5173"},
		{name: "empty", in: "", err: "empty"},
		{name: "only white space", in: " \n\t", err: "empty"},
		{name: "two lines", in: "http://a:1\nhttp://b:2", err: "more than one line"},
		{name: "relative", in: "/build", err: "scheme"},
		{name: "no scheme", in: "localhost:5173", err: "scheme"},
		{name: "ws scheme", in: "ws://localhost:5173", err: "scheme"},
		{name: "file scheme", in: "file:///etc/passwd", err: "scheme"},
		{name: "no host", in: "http:///x", err: "no host"},
		{name: "opaque", in: "http:localhost", err: "no host"},
		{name: "empty host name", in: "http://:5173", err: "empty host"},
		{name: "user info", in: "http://u:p@localhost:5173", err: "user information"},
		{name: "query", in: "http://localhost:5173/?a=b", err: "query"},
		{name: "fragment", in: "http://localhost:5173/#x", err: "query or fragment"},
		{name: "port zero", in: "http://localhost:0", err: "out of range"},
		{name: "port too large", in: "http://localhost:70000", err: "out of range"},
		{name: "bad escape", in: "http://localhost:5173/%zz", err: "invalid"},
		{name: "unix socket", in: "unix:///var/lib/x/preview-abc/sock/http.sock\n", want: "unix:///var/lib/x/preview-abc/sock/http.sock"},
		{name: "unix without authority", in: "unix:/run/http.sock", want: "unix:/run/http.sock"},
		{name: "unix escaped", in: "unix:///run/a%20b.sock", want: "unix:///run/a%20b.sock"},
		{name: "unix relative", in: "unix:run/http.sock", err: "absolute path"},
		{name: "unix host", in: "unix://localhost/run/http.sock", err: "no host"},
		{name: "unix user", in: "unix://u@/run/http.sock", err: "no host"},
		{name: "unix no path", in: "unix://", err: "not absolute"},
		{name: "unix root", in: "unix:///", err: "not absolute"},
		{name: "unix trailing slash", in: "unix:///run/", err: "not absolute and clean"},
		{name: "unix dot dot", in: "unix:///run/../etc/x.sock", err: "not absolute and clean"},
		{name: "unix NUL", in: "unix:///run/a%00.sock", err: "NUL"},
		{name: "unix query", in: "unix:///run/http.sock?x=1", err: "query"},
		{name: "unix fragment", in: "unix:///run/http.sock#x", err: "query or fragment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := hotfile.Parse([]byte(tt.in))
			if tt.err != "" {
				require.Error(t, err)
				assert.ErrorIs(t, err, hotfile.ErrInvalid)
				assert.Contains(t, err.Error(), tt.err)
				assert.Nil(t, u)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, u.String())
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"http://localhost:5173\n", "https://[::1]:1/build", "http://:80", "ws://x", "http://a:1\nhttp://b",
		"http://u@h", "http://h/?q", "\x00", "http://h:99999", "http://h/%zz", "HTTP://H",
		"unix:///run/http.sock", "unix:/a", "unix://h/a", "unix:///a/../b", "unix:///a%00", "UNIX:///a%2Fb",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := hotfile.Parse(data)
		if err != nil {
			if u != nil {
				t.Fatalf("Parse(%q) returned a URL with an error", data)
			}
			if !errors.Is(err, hotfile.ErrInvalid) {
				t.Fatalf("Parse(%q): error %v does not wrap ErrInvalid", data, err)
			}
			return
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("Parse(%q) accepted %#v", data, u)
		}
		switch u.Scheme {
		case "http", "https":
			if u.Hostname() == "" {
				t.Fatalf("Parse(%q) accepted %#v", data, u)
			}
		case hotfile.UnixScheme:
			if u.Host != "" || !strings.HasPrefix(u.Path, "/") || strings.ContainsRune(u.Path, 0) || path.Clean(u.Path) != u.Path {
				t.Fatalf("Parse(%q) accepted %#v", data, u)
			}
		default:
			t.Fatalf("Parse(%q) accepted %#v", data, u)
		}
		// What Parse accepts, Write can store and Parse reads back the same.
		again, err := hotfile.Parse([]byte(u.String() + "\n"))
		if err != nil {
			t.Fatalf("Parse(%q) = %q, which does not parse again: %v", data, u, err)
		}
		if again.String() != u.String() {
			t.Fatalf("round trip of %q: %q != %q", data, again, u)
		}
	})
}

func TestWriteReadRemove(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "public", "hot") // the directory is created by Write
	u, _ := url.Parse("http://localhost:5173/build")

	require.NoError(t, hotfile.Write(path, u))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "http://localhost:5173/build\n", string(b), "the laravel/litestar format")

	got, err := hotfile.Read(path)
	require.NoError(t, err)
	assert.Equal(t, u.String(), got.String())

	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file is left behind")

	require.NoError(t, hotfile.Remove(path))
	_, err = hotfile.Read(path)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	require.NoError(t, hotfile.Remove(path), "removing a missing file is not an error")
}

// A dev server on a Unix socket is named by UnixURL; the hot file holds
// that URL as text, and Read gives back the socket's path.
func TestWriteReadUnixURL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hot")
	sock := "/var/lib/vitehost/preview-abc/sock/http.sock"
	require.NoError(t, hotfile.Write(path, hotfile.UnixURL(sock)))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "unix://"+sock+"\n", string(b))

	got, err := hotfile.Read(path)
	require.NoError(t, err)
	assert.Equal(t, hotfile.UnixScheme, got.Scheme)
	assert.Equal(t, sock, got.Path)
	assert.Equal(t, *hotfile.UnixURL(sock), *got, "what Read returns equals what UnixURL made")

	for _, bad := range []string{"", "run/http.sock", "/run/../http.sock", "/run/"} {
		require.ErrorIs(t, hotfile.Write(path, hotfile.UnixURL(bad)), hotfile.ErrInvalid, "socket path %q", bad)
	}
}

func TestWriteRejectsInvalid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hot")
	u, _ := url.Parse("ws://localhost:5173")
	err := hotfile.Write(path, u)
	require.ErrorIs(t, err, hotfile.ErrInvalid)
	assert.NoFileExists(t, path)
	require.ErrorIs(t, hotfile.Write(path, nil), hotfile.ErrInvalid)
}

func TestReadErrorsNameThePath(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content, want string
	}{
		{"garbage", "not-a-url", "scheme"},
		{"huge", "http://localhost:1/" + strings.Repeat("a", hotfile.MaxSize), "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name)
			require.NoError(t, os.WriteFile(path, []byte(tt.content), 0o644))
			_, err := hotfile.Read(path)
			require.ErrorIs(t, err, hotfile.ErrInvalid)
			assert.Contains(t, err.Error(), path)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestHMRPath(t *testing.T) {
	assert.Equal(t, "/app/public/hot.hmr", hotfile.HMRPath("/app/public/hot"))
}
