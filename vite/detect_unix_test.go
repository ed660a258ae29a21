//go:build unix

package vite

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDetectSwappedPackageJSON: code in a sandbox can replace the
// project's package.json; Detect (and a Start's preflight, which reads it
// the same way) refuses what it put there, at once, without following a
// link onto the host.
func TestDetectSwappedPackageJSON(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret.json")
	require.NoError(t, os.WriteFile(secret, []byte(`{"dependencies":{"nuxt":"CANARY"}}`), 0o600))
	for _, tc := range []struct {
		name, why string
		swap      func(t *testing.T, p string)
	}{
		{"symlink to a host file", "package.json is not a regular file (a symbolic link)", func(t *testing.T, p string) { require.NoError(t, os.Symlink(secret, p)) }},
		{"fifo", "package.json is not a regular file (a named pipe)", func(t *testing.T, p string) { require.NoError(t, syscall.Mkfifo(p, 0o666)) }},
		{"directory", "package.json is not a regular file (a directory)", func(t *testing.T, p string) { require.NoError(t, os.Mkdir(p, 0o755)) }},
		{"huge file", "package.json is too large", func(t *testing.T, p string) {
			require.NoError(t, os.WriteFile(p, nil, 0o644))
			require.NoError(t, os.Truncate(p, 1<<40))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.swap(t, filepath.Join(dir, "package.json"))
			fw, err := Detect(dir)
			require.ErrorIs(t, err, ErrInvalidPackageJSON)
			require.Contains(t, err.Error(), tc.why)
			require.NotContains(t, err.Error(), "CANARY")
			require.Equal(t, Auto, fw)
		})
	}
}
