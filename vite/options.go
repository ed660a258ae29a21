package vite

import (
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"time"

	"github.com/vitehost/vitehost/sandbox"
)

// Plugin is a Vite plugin that the runner imports from the project by module
// name and adds to the config (plain Vite only).
type Plugin struct {
	// Module is the module to import, resolved from the project directory,
	// e.g. "@vitejs/plugin-react", or a path relative to it.
	Module string
	// Export names the export that makes the plugin; "" means the default
	// export. A function is called with Options; anything else is used as
	// the plugin itself.
	Export string
	// Options is the JSON-encodable argument of the plugin function; nil
	// means the function is called without one.
	Options any
}

// Options configures Start. A nil *Options means the defaults; Start never
// modifies the Options it is given.
type Options struct {
	// Framework says which dev server to run; Auto means Detect.
	Framework Framework

	// Host is the address both listeners bind; "" means 127.0.0.1.
	Host string
	// Port is the dev server's HTTP port and HMRPort the port of its HMR
	// WebSocket listener; 0 means a free port picked at each start, with new
	// picks when another process takes the port first.
	Port, HMRPort int

	// PublicURL is where the browser reaches the app: the public URL of the
	// proxy in front of the dev server, such as http://localhost:8000 or
	// https://preview-abc.example.com. The HMR client connects to its host
	// and port (wss for https), and its host name is allowed by the dev
	// server's host check. A URL without a host name, such as
	// http://:8000, keeps the page's host name and sets only the port (a Go
	// app that may be reached as localhost, 127.0.0.1 or a LAN name). Nil
	// means the browser talks to the dev server directly, and the HMR client
	// connects to the HMR port.
	PublicURL *url.URL
	// HMRPath is the path of the HMR WebSocket as the browser sees it, such
	// as "/hmr"; "" means the framework's default (the base, "/" or "/_nuxt/").
	HMRPath string

	// HotFile is where the HTTP URL is written when the dev server is ready
	// (and the HMR URL beside it, see hotfile.HMRPath); both are removed when
	// it stops or crashes. "" means no hot files.
	HotFile string

	// ConfigFile is the project's Vite config file (plain Vite); "" means
	// Vite's own lookup of vite.config.*.
	ConfigFile string
	// NoConfigFile makes Vite load no config file at all (plain Vite): the
	// caller builds the whole config through Config and Plugins.
	NoConfigFile bool
	// Config is inline Vite config merged over the project's config (plain
	// Vite), such as root, cacheDir, resolve.alias or server.fs.allow. It
	// must be JSON-encodable. The launch settings (host, ports, HMR) win.
	Config map[string]any
	// Plugins are imported from the project and added to the config (plain
	// Vite).
	Plugins []Plugin

	// ClientErrors adds a small module to every page the dev server serves
	// (plain Vite) that reports the page's runtime errors over the HMR
	// socket: uncaught errors, unhandled rejections, modules that fail to
	// load and console.error calls. They reach OnEvent as EventClientError,
	// their stacks mapped to the project's files. Anyone who can open the
	// HMR socket can send such reports, with any text: each socket may
	// send 30 at once and 3 a second after that, the rest are dropped.
	ClientErrors bool
	// OnEvent receives what the dev server reports as it happens (plain
	// Vite): the HMR messages and compile errors that no batch caused, and
	// the pages' runtime errors (ClientErrors). It is called from one
	// goroutine, in order, and must return quickly; nil drops the events.
	OnEvent func(Event)

	// Env is added to the child's environment (with Sandbox, to the
	// sandbox's clean environment).
	Env []string
	// Node is the node binary; "" means "node" on PATH.
	Node string
	// Stdout and Stderr receive the child's output, line by line; nil means
	// the lines go to Logger at debug level.
	Stdout, Stderr io.Writer
	// Logger receives the server's own events; nil means slog.Default().
	Logger *slog.Logger

	// StartTimeout bounds each start, from the process start to ready; 0
	// means DefaultViteStartTimeout or DefaultNuxtStartTimeout.
	StartTimeout time.Duration
	// StopTimeout is the grace between SIGTERM and SIGKILL; 0 means
	// DefaultStopTimeout.
	StopTimeout time.Duration
	// NoRestart leaves a crashed dev server down: Done is closed and Err
	// says why.
	NoRestart bool
	// MaxLimitCrashes is how many crashes in a row at a limit of its
	// sandbox (the kernel killed it at Sandbox.Limits.Memory) the dev
	// server is restarted after: the next one leaves it down, Done is
	// closed and Err wraps sandbox.ErrMemoryLimit. A run that stayed up
	// for a while starts the count over. 0 means DefaultMaxLimitCrashes, a
	// negative value restarts it forever. A project that needs more memory
	// than its limit needs it at every start.
	MaxLimitCrashes int
	// OnCrash is called when the dev server crashes, with why (an error
	// that wraps ErrExited and, when a limit of its sandbox killed it,
	// sandbox.ErrMemoryLimit or sandbox.ErrPidsLimit) and whether it is
	// restarted; then Subscribe reports it back up, or Done is closed. It
	// is called from the Server's own goroutine and must return quickly;
	// nil means no call.
	OnCrash func(err error, restarting bool)

	// Sandbox runs the dev server (plain Vite only) in a bubblewrap sandbox
	// that nothing of the host but the project and its dependencies is in
	// (see package sandbox): for code the server owner does not trust, such
	// as a tenant's project with its own vite.config. Its Project must be
	// "" or dir: the project is mounted at sandbox.ProjectDir, its Modules,
	// when set, at sandbox.ModulesDir. The dev server listens on Unix
	// sockets in SocketDir, not on ports. Paths in Config and ConfigFile
	// are then paths inside the sandbox (a ConfigFile in dir is
	// translated). The runner keeps forcing the root, the sockets, the HMR
	// client's address and the allowed hosts over the project's config.
	// dir and Modules must be reachable by the sandbox's host user (see
	// sandbox.Config.UID), which gets dir's own directory; files the dev
	// server must rewrite (a copied dependency cache) must be that user's.
	Sandbox *sandbox.Config
	// SocketDir is the directory where the dev server's Unix sockets are
	// made (plain Vite only): http.sock for HTTP (Vite in middleware mode
	// on the runner's own server) and hmr.sock for the HMR WebSocket. The
	// sockets are bound by this process and handed to the dev server, so
	// that the dev server can neither move nor replace them. "" means TCP
	// ports, or with Sandbox a new temporary directory that Stop removes.
	// Targets, and HotFile, then hold URLs of the scheme "unix" whose Path
	// is the socket.
	SocketDir string
}

// withDefaults copies opts and fills in the zero values.
func withDefaults(dir string, opts *Options) (Options, Framework, error) {
	var o Options
	if opts != nil {
		o = *opts
		o.Env = append([]string(nil), opts.Env...)
		o.Plugins = append([]Plugin(nil), opts.Plugins...)
		if opts.PublicURL != nil {
			u := *opts.PublicURL
			o.PublicURL = &u
		}
		if opts.Sandbox != nil {
			sb := *opts.Sandbox
			sb.ReadOnly = append([]sandbox.Mount(nil), sb.ReadOnly...)
			sb.Files = append([]sandbox.File(nil), sb.Files...)
			sb.Env = append([]string(nil), sb.Env...)
			o.Sandbox = &sb
		}
	}
	fw := o.Framework
	if fw == Auto {
		var err error
		if fw, err = Detect(dir); err != nil {
			return o, fw, err
		}
	}
	if fw != Vite && fw != Nuxt && fw != Astro {
		return o, fw, fmt.Errorf("%w: unknown framework %q", ErrInvalidOptions, fw)
	}
	if fw != Vite && (o.ConfigFile != "" || o.NoConfigFile || o.Config != nil || len(o.Plugins) > 0 || o.ClientErrors) {
		return o, fw, fmt.Errorf("%w: ConfigFile, NoConfigFile, Config, Plugins and ClientErrors apply to plain Vite only", ErrInvalidOptions)
	}
	if err := checkSockets(dir, fw, &o); err != nil {
		return o, fw, err
	}
	if o.Host == "" {
		o.Host = DefaultHost
	}
	if o.Port < 0 || o.Port > 65535 || o.HMRPort < 0 || o.HMRPort > 65535 {
		return o, fw, fmt.Errorf("%w: port out of range", ErrInvalidOptions)
	}
	if o.Port != 0 && o.Port == o.HMRPort {
		return o, fw, fmt.Errorf("%w: Port and HMRPort are both %d", ErrInvalidOptions, o.Port)
	}
	if err := checkPublic(o.PublicURL, o.HMRPath); err != nil {
		return o, fw, err
	}
	if o.Node == "" {
		o.Node = "node"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = DefaultViteStartTimeout
		if fw == Nuxt {
			o.StartTimeout = DefaultNuxtStartTimeout
		}
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = DefaultStopTimeout
	}
	if o.MaxLimitCrashes == 0 {
		o.MaxLimitCrashes = DefaultMaxLimitCrashes
	}
	return o, fw, nil
}
