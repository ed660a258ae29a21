package vite

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"

	"github.com/vitehost/vitehost/hotfile"
)

// The sockets of a dev server that listens on Unix sockets, in its socket
// directory.
const (
	httpSocket = "http.sock"
	hmrSocket  = "hmr.sock"
)

// maxSocketPath is the longest path a Unix socket can have on Linux (108
// bytes of sun_path with the terminating NUL).
const maxSocketPath = 107

// checkSockets validates the options of a dev server on Unix sockets (a
// Sandbox, or a SocketDir) before the defaults are applied.
func checkSockets(dir string, fw Framework, o *Options) error {
	if o.Sandbox == nil && o.SocketDir == "" {
		return nil
	}
	if fw != Vite {
		return fmt.Errorf("%w: Sandbox and SocketDir apply to plain Vite only", ErrInvalidOptions)
	}
	if o.Host != "" || o.Port != 0 || o.HMRPort != 0 {
		return fmt.Errorf("%w: Host, Port and HMRPort apply to TCP; with Sandbox or SocketDir the dev server listens on Unix sockets", ErrInvalidOptions)
	}
	if o.SocketDir != "" {
		abs, err := filepath.Abs(o.SocketDir)
		if err != nil {
			return fmt.Errorf("%w: SocketDir: %v", ErrInvalidOptions, err)
		}
		o.SocketDir = abs
		if p := filepath.Join(abs, hmrSocket); len(p) > maxSocketPath {
			return fmt.Errorf("%w: SocketDir %s is too long for a Unix socket path (%d bytes at most)", ErrInvalidOptions, abs, maxSocketPath)
		}
	}
	if o.Sandbox != nil {
		return checkSandbox(dir, o)
	}
	return nil
}

// makeSocketDir makes the directory of the sockets, when the dev server
// listens on them: SocketDir, or a new temporary directory.
func (l *launcher) makeSocketDir() error {
	switch {
	case l.opts.SocketDir != "":
		l.sockDir = l.opts.SocketDir
		if err := os.MkdirAll(l.sockDir, 0o700); err != nil {
			return fmt.Errorf("vitehost/vite: socket directory: %w", err)
		}
	case l.opts.Sandbox != nil:
		d, err := os.MkdirTemp("", "vitehost-")
		if err != nil {
			return fmt.Errorf("vitehost/vite: socket directory: %w", err)
		}
		l.sockDir, l.ownSockDir = d, true
	}
	return nil
}

// removeSocketDir removes the socket directory when Start made it.
func (l *launcher) removeSocketDir() {
	if l.ownSockDir {
		if err := os.RemoveAll(l.sockDir); err != nil {
			l.log.Warn("vitehost/vite: remove socket directory", "err", err)
		}
	}
}

// listenSockets binds the run's sockets afresh (a socket file left by an
// earlier run is replaced) and returns their listening descriptors, HTTP
// then HMR, which the dev server inherits as descriptors 3 and 4, and a
// function that closes this process's copies. Only this process can bind
// there: the dev server gets the listeners, not the directory.
func (l *launcher) listenSockets() ([]*os.File, func(), error) {
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	for _, name := range []string{httpSocket, hmrSocket} {
		path := filepath.Join(l.sockDir, name)
		if err := removeSocket(path); err != nil {
			closeAll()
			return nil, nil, err
		}
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("vitehost/vite: listen on %s: %w", path, err)
		}
		// The socket file stays for the dev server when this process's
		// listener closes; the run's end removes it.
		l.SetUnlinkOnClose(false)
		f, err := l.File()
		l.Close()
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("vitehost/vite: listen on %s: %w", path, err)
		}
		files = append(files, f)
	}
	return files, closeAll, nil
}

// unlinkSockets removes the run's socket files: a client then gets "no such
// file" until the next run binds them again.
func (l *launcher) unlinkSockets() {
	for _, name := range []string{httpSocket, hmrSocket} {
		if err := removeSocket(filepath.Join(l.sockDir, name)); err != nil {
			l.log.Warn("vitehost/vite: remove socket", "err", err)
		}
	}
}

// removeSocket removes the socket file at path, if there is one; anything
// else at path is an error, not something to delete.
func removeSocket(path string) error {
	info, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("vitehost/vite: %w", err)
	case info.Mode().Type() != fs.ModeSocket:
		return fmt.Errorf("vitehost/vite: %s exists and is not a socket", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("vitehost/vite: %w", err)
	}
	return nil
}

// socketTargets returns the targets of a dev server on the sockets in dir:
// URLs of the scheme "unix" whose Path is the socket's absolute path.
func socketTargets(dir string) hotfile.Targets {
	return hotfile.Targets{
		HTTP: &url.URL{Scheme: "unix", Path: filepath.Join(dir, httpSocket)},
		HMR:  &url.URL{Scheme: "unix", Path: filepath.Join(dir, hmrSocket)},
	}
}
