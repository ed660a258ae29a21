package ssrproxy

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// Defaults of NewTransport.
const (
	// DefaultMaxIdleConnsPerHost is how many idle connections to one dev
	// server are kept. A page load fires dozens of module requests at once
	// (all of them at once when the browser speaks HTTP/2 to the Go app);
	// Go's default of 2 makes most of them open a new connection.
	DefaultMaxIdleConnsPerHost = 128

	// DefaultMaxIdleConns bounds the idle connections of a transport shared
	// by many proxies (one per preview session, each with its own dev
	// server).
	DefaultMaxIdleConns = 1024

	// DefaultIdleConnTimeout is how long an idle connection is kept.
	DefaultIdleConnTimeout = 90 * time.Second

	// connBufferSize is the size of each connection's read and write
	// buffers: module responses run to tens of kilobytes.
	connBufferSize = 32 << 10

	// copyBufferSize is the size of the buffers that copy bodies and
	// WebSocket traffic.
	copyBufferSize = 32 << 10
)

// NewTransport returns an *http.Transport tuned for dev servers: it keeps
// DefaultMaxIdleConnsPerHost idle connections per dev server, never goes
// through an HTTP proxy from the environment, passes compressed bodies through
// untouched (the browser's Accept-Encoding decides), speaks HTTP/1.1 only
// (WebSocket handshakes need it) and puts no limit on the time to the first
// response byte (Vite's first request can wait seconds for the dependency
// optimizer). Its DialContext dials the Unix socket of a unix target (see
// NewRequest), which no other transport does. Callers may change the result
// before they use it, for example to trust a dev server's self-signed
// certificate; a replaced DialContext loses the Unix sockets.
func NewTransport() *http.Transport {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           dialContext(dialer),
		MaxIdleConns:          DefaultMaxIdleConns,
		MaxIdleConnsPerHost:   DefaultMaxIdleConnsPerHost,
		IdleConnTimeout:       DefaultIdleConnTimeout,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
		ReadBufferSize:        connBufferSize,
		WriteBufferSize:       connBufferSize,
	}
}

// sharedTransport is the transport of every Proxy created without one.
var sharedTransport = sync.OnceValue(func() http.RoundTripper { return NewTransport() })

// copyBuffers recycles the buffers that copy response bodies: ReverseProxy
// would otherwise allocate 32 KiB per request.
var copyBuffers = &bufferPool{}

type bufferPool struct{ pool sync.Pool }

func (b *bufferPool) Get() []byte {
	if p, ok := b.pool.Get().(*[]byte); ok {
		return *p
	}
	return make([]byte, copyBufferSize)
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) < copyBufferSize {
		return
	}
	buf = buf[:copyBufferSize]
	b.pool.Put(&buf)
}
