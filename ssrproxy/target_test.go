package ssrproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// NewTransport dials a Unix socket only for a request that this package made
// for it: a URL that spells a socket's host name (from a client, a
// redirect) reaches no socket, and a request that carries a socket in its
// context but names another host goes to that host.
func TestOnlyOwnRequestsDialSockets(t *testing.T) {
	dir, err := os.MkdirTemp("", "ssrproxy-sock-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s.sock")
	ln, err := net.Listen("unix", sock)
	require.NoError(t, err)
	accepted := make(chan int, 1)
	go func() {
		n := 0
		for {
			c, err := ln.Accept()
			if err != nil {
				accepted <- n
				return
			}
			n++
			c.Close()
		}
	}()
	tcp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "tcp") }))
	t.Cleanup(tcp.Close)
	tr := NewTransport()
	t.Cleanup(tr.CloseIdleConnections)

	req, err := http.NewRequest("GET", "http://"+socketHost(sock)+"/", nil)
	require.NoError(t, err)
	_, err = tr.RoundTrip(req)
	var dnsErr *net.DNSError
	assert.True(t, errors.As(err, &dnsErr), "%v", err)

	ctx := context.WithValue(t.Context(), socketKey{}, sock)
	req, err = http.NewRequestWithContext(ctx, "GET", tcp.URL, nil)
	require.NoError(t, err)
	res, err := tr.RoundTrip(req)
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, "tcp", string(body))

	ln.Close()
	assert.Zero(t, <-accepted, "connections to the socket")
}
