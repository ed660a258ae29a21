package preview

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// deadline bounds each wait of these tests; never a measurement.
const deadline = 60 * time.Second

// edgeServer is a Manager's router and API, with the probes, behind a
// Server built by NewServer with opts, on a loopback listener. extra, when
// not nil, is mounted at /test/ of the API host.
func edgeServer(t *testing.T, m *Manager, opts *ServerOptions, extra http.Handler) (*Server, string) {
	t.Helper()
	api := http.NewServeMux()
	api.Handle("GET /healthz", m.Healthz())
	if extra != nil {
		api.Handle("/test/", extra)
	}
	api.Handle("/", m.API())
	srv := NewServer(m.Router(api), opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		assert.ErrorIs(t, <-served, http.ErrServerClosed)
	})
	return srv, ln.Addr().String()
}

// rawRequest writes a request by hand on a new connection to addr.
func rawRequest(t *testing.T, addr, req string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	if req != "" {
		_, err = io.WriteString(c, req)
		require.NoError(t, err)
	}
	return c
}

// readResponse reads one response from c, within deadline.
func readResponse(t *testing.T, c net.Conn) (*http.Response, string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(deadline))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err, "an answer comes")
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(body)
}

// awaitClosed reads c until the server closes it, and fails when it does
// not within deadline.
func awaitClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(deadline))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: still open after %s", what, deadline)
	}
	// nil is EOF; a reset is a close too
}

func healthz(t *testing.T, addr string) {
	t.Helper()
	c := rawRequest(t, addr, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
	res, body := readResponse(t, c)
	assert.Equal(t, 200, res.StatusCode)
	assert.Equal(t, "ok\n", body)
}

// TestServerClosesIdleConnections is the attack of issue 19 (finding 2):
// connections that send nothing, and keep-alive connections that stay
// idle after a request, are closed by the server built with NewServer; with
// net/http's defaults they stayed open for ever.
func TestServerClosesIdleConnections(t *testing.T) {
	m := newSandboxedManager(t, Options{Token: "s3cret"})
	_, addr := edgeServer(t, m, &ServerOptions{ReadHeaderTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond}, nil)
	var conns []net.Conn
	for range 100 {
		conns = append(conns, rawRequest(t, addr, "")) // says nothing
	}
	for range 100 {
		c := rawRequest(t, addr, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
		res, _ := readResponse(t, c)
		require.Equal(t, 200, res.StatusCode)
		require.False(t, res.Close, "kept alive")
		conns = append(conns, c)
	}
	// A slow header: one byte now and then, each within the idle time.
	slow := rawRequest(t, addr, "G")
	for range 5 {
		time.Sleep(100 * time.Millisecond)
		if _, err := io.WriteString(slow, "E"); err != nil {
			break // closed already
		}
	}
	conns = append(conns, slow)
	for i, c := range conns {
		awaitClosed(t, c, fmt.Sprintf("connection %d", i))
	}
}

// TestServerAnswersTricklingPOST: a POST without the token whose body
// trickles gets its 401 at once, before its body is read, and its
// connection closes; with the token, a body that stops coming is cut by
// BodyTimeout.
func TestServerAnswersTricklingPOST(t *testing.T) {
	m := newSandboxedManager(t, Options{Token: "s3cret"})
	// A long BodyTimeout: only an answer that does not wait for the body
	// can come within the test's deadline.
	_, addr := edgeServer(t, m, &ServerOptions{BodyTimeout: time.Hour}, nil)
	head := "POST /kontext/preview HTTP/1.1\r\nHost: localhost:8080\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n"
	c := rawRequest(t, addr, head+"\r\n{")
	res, body := readResponse(t, c)
	assert.Equal(t, 401, res.StatusCode, "%s", body)
	assert.True(t, res.Close, "the connection closes: what follows is the rest of a body nobody reads")
	awaitClosed(t, c, "the refused POST's connection")

	// The same with a chunked body.
	c = rawRequest(t, addr, "POST /kontext/preview/abc/update HTTP/1.1\r\nHost: localhost:8080\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n")
	res, _ = readResponse(t, c)
	assert.Equal(t, 401, res.StatusCode)
	awaitClosed(t, c, "the refused chunked POST's connection")

	// With the token, the body's deadline cuts a body that stops coming.
	_, addr = edgeServer(t, m, &ServerOptions{BodyTimeout: 300 * time.Millisecond}, nil)
	c = rawRequest(t, addr, head+"Authorization: Bearer s3cret\r\n\r\n{")
	res, body = readResponse(t, c)
	assert.Equal(t, 408, res.StatusCode, "%s", body)
	assert.Contains(t, body, CodeBodyTimeout)
	awaitClosed(t, c, "the stalled POST's connection")
}

// TestServerConnectionCap: at MaxConns, a new connection takes the place
// of the longest idle one, so that /healthz answers through a flood of
// connections that send nothing; when every connection is busy, new ones
// are closed at once, and the count goes down as busy ones end.
func TestServerConnectionCap(t *testing.T) {
	m := newSandboxedManager(t, Options{})
	const max = 8
	release := make(chan struct{})
	var started sync.WaitGroup
	block := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Done()
		<-release
	})
	srv, addr := edgeServer(t, m, &ServerOptions{MaxConns: max, ReadHeaderTimeout: time.Hour, IdleTimeout: time.Hour}, block)
	counts := func() (open, evicted, refused int) {
		srv.conns.mu.Lock()
		defer srv.conns.mu.Unlock()
		return srv.conns.open, srv.conns.evicted, srv.conns.refused
	}

	// A flood of silent connections: /healthz still answers.
	var silent []net.Conn
	for range 3 * max {
		silent = append(silent, rawRequest(t, addr, ""))
	}
	healthz(t, addr)
	open, evicted, refused := counts()
	assert.LessOrEqual(t, open, max)
	assert.GreaterOrEqual(t, evicted, 2*max, "silent connections gave way")
	assert.Zero(t, refused)
	for _, c := range silent[:2*max] {
		awaitClosed(t, c, "a silent connection beyond the cap")
	}
	// The silent ones that kept their place go, so that the busy ones
	// below take every place without evicting one another (one whose
	// request the server has not read yet counts as idle).
	for _, c := range silent[2*max:] {
		c.Close()
	}
	require.Eventually(t, func() bool { open, _, _ := counts(); return open == 0 }, deadline, 10*time.Millisecond)

	// Every place busy: a new connection is refused.
	started.Add(max)
	for range max {
		rawRequest(t, addr, "GET /test/block HTTP/1.1\r\nHost: localhost\r\n\r\n")
	}
	started.Wait()
	open, _, _ = counts()
	assert.Equal(t, max, open)
	c := rawRequest(t, addr, "")
	io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n") // it may be closed already
	c.SetReadDeadline(time.Now().Add(deadline))
	_, err := bufio.NewReader(c).ReadString('\n')
	require.Error(t, err, "no answer at the cap")
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "closed, not held: %v", err)
	_, _, refused = counts()
	assert.Equal(t, 1, refused)

	// The busy ones end: /healthz answers again, once the server has seen
	// their handlers return (a connection is busy until then).
	close(release)
	require.Eventually(t, func() bool { return answersHealthz(addr) }, deadline, 10*time.Millisecond)
	healthz(t, addr)
}

// answersHealthz reports whether GET /healthz on a new connection to addr
// gets its 200.
func answersHealthz(addr string) bool {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(deadline))
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"); err != nil {
		return false
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == 200
}

// TestServerKeepsStreams: a response that keeps writing outlives
// WriteTimeout, and a request whose body was read outlives BodyTimeout
// (its context is not canceled by the body's deadline).
func TestServerKeepsStreams(t *testing.T) {
	m := newSandboxedManager(t, Options{})
	const timeout = 200 * time.Millisecond
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		rc := http.NewResponseController(w)
		for i := range 8 {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(timeout / 2):
			}
			fmt.Fprintf(w, "tick %d\n", i)
			if err := rc.Flush(); err != nil {
				return
			}
		}
		io.WriteString(w, "done\n")
	})
	_, addr := edgeServer(t, m, &ServerOptions{WriteTimeout: timeout, BodyTimeout: timeout}, handler)
	c := rawRequest(t, addr, "POST /test/stream HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
	res, body := readResponse(t, c)
	assert.Equal(t, 200, res.StatusCode)
	assert.True(t, strings.HasSuffix(body, "tick 7\ndone\n"), "the whole stream: %q", body)
}

// TestServerFinalFlush: what a handler wrote into the response's buffer
// and left there while it worked on for longer than WriteTimeout is still
// sent when it returns: the write timeout bounds a write, not the time
// since the last one.
func TestServerFinalFlush(t *testing.T) {
	m := newSandboxedManager(t, Options{})
	const timeout = 200 * time.Millisecond
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "whole") // buffered, not sent yet
		time.Sleep(2 * timeout)    // the write's deadline passes
	})
	_, addr := edgeServer(t, m, &ServerOptions{WriteTimeout: timeout}, handler)
	c := rawRequest(t, addr, "GET /test/slow HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
	res, body := readResponse(t, c)
	assert.Equal(t, 200, res.StatusCode)
	assert.Equal(t, "whole", body)
}

// TestFileLimit: the process runs with its soft limit on files raised to
// the hard one (Go does that at start, go.dev/issue/46279), and the
// default cap stays within half of it.
func TestFileLimit(t *testing.T) {
	if _, err := os.Stat("/proc/self/limits"); err != nil {
		t.Skip("no /proc/self/limits here")
	}
	limits, err := os.ReadFile("/proc/self/limits")
	require.NoError(t, err)
	var soft, hard string
	for _, line := range strings.Split(string(limits), "\n") {
		if f := strings.Fields(line); len(f) >= 6 && strings.HasPrefix(line, "Max open files") {
			soft, hard = f[3], f[4]
		}
	}
	assert.Equal(t, hard, soft, "the soft limit on open files is the hard one")
	n := fileLimit()
	if soft == "unlimited" {
		assert.Zero(t, n)
		return
	}
	assert.Equal(t, soft, fmt.Sprint(n))
	srv := NewServer(http.NotFoundHandler(), nil)
	assert.Equal(t, min(uint64(DefaultMaxConns), n/2), uint64(srv.conns.max))
}

// TestServerTLSConnectionCap: over ServeTLS, the cap still tells idle
// connections from busy ones (its hook sees *tls.Conn), and the handlers
// see the connection's TLS state.
func TestServerTLSConnectionCap(t *testing.T) {
	m := newSandboxedManager(t, Options{})
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, certFile, keyFile)
	const max = 4
	sawTLS := make(chan bool, 1)
	api := http.NewServeMux()
	api.Handle("GET /healthz", m.Healthz())
	api.HandleFunc("GET /tls", func(w http.ResponseWriter, r *http.Request) { sawTLS <- r.TLS != nil })
	srv := NewServer(m.Router(api), &ServerOptions{MaxConns: max, ReadHeaderTimeout: time.Hour, IdleTimeout: time.Hour})
	srv.HTTP.ErrorLog = log.New(io.Discard, "", 0) // the handshakes of the connections closed at the cap
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(ln, certFile, keyFile) }()
	defer func() {
		srv.Close()
		assert.ErrorIs(t, <-served, http.ErrServerClosed)
	}()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: deadline}
	defer client.CloseIdleConnections()
	base := "https://" + ln.Addr().String()

	for range 3 * max {
		rawRequest(t, ln.Addr().String(), "") // silent: no TLS handshake even
	}
	res, err := client.Get(base + "/tls")
	require.NoError(t, err)
	res.Body.Close()
	assert.True(t, <-sawTLS, "the handler sees the TLS state")
	res, err = client.Get(base + "/healthz")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, 200, res.StatusCode)
	srv.conns.mu.Lock()
	open, evicted := srv.conns.open, srv.conns.evicted
	srv.conns.mu.Unlock()
	assert.LessOrEqual(t, open, max)
	assert.GreaterOrEqual(t, evicted, 2*max, "silent connections gave way")
}

// writeSelfSigned writes a certificate for 127.0.0.1 and its key.
func writeSelfSigned(t *testing.T, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
}

// TestLimitedConnCloseWrite: a counted connection half-closes like the
// TCP connection under it, as the WebSocket tunnel needs.
func TestLimitedConnCloseWrite(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln := &limitListener{Listener: inner, lim: newConnLimiter(1)}
	defer ln.Close()
	client := rawRequest(t, inner.Addr().String(), "")
	c, err := ln.Accept()
	require.NoError(t, err)
	defer c.Close()
	cw, ok := c.(interface{ CloseWrite() error })
	require.True(t, ok)
	require.NoError(t, cw.CloseWrite())
	client.SetReadDeadline(time.Now().Add(deadline))
	n, err := client.Read(make([]byte, 1))
	assert.Zero(t, n)
	assert.ErrorIs(t, err, io.EOF, "the client sees the end")
	_, err = io.WriteString(client, "x")
	require.NoError(t, err)
	c.SetReadDeadline(time.Now().Add(deadline))
	b := make([]byte, 1)
	_, err = io.ReadFull(c, b)
	require.NoError(t, err, "and may still send")
	assert.Equal(t, "x", string(b))
}
