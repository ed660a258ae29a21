package testenv

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// WebSocket opcodes (RFC 6455, 5.2).
const (
	OpText   byte = 0x1
	OpBinary byte = 0x2
	OpClose  byte = 0x8
	OpPing   byte = 0x9
	OpPong   byte = 0xA
)

// WSConn is a minimal WebSocket peer for tests: it writes and reads single
// frames exactly as given, with no automatic pong or close reply, so that a
// test sees on the wire what the other side sent. It does no fragmentation
// and no extensions.
type WSConn struct {
	Conn   net.Conn
	br     *bufio.Reader
	client bool // a client masks what it sends

	wmu sync.Mutex
}

// ErrHandshake is returned by DialWebSocket when the server did not answer
// 101; the response is returned with it, its body read into Body.
var ErrHandshake = errors.New("testenv: websocket handshake refused")

// DialWebSocket opens a WebSocket to rawURL (ws:// or http://) with the extra
// request headers h (Sec-WebSocket-Protocol, Origin, ...). On a refusal it
// returns the response, whose body it has read, and ErrHandshake.
func DialWebSocket(ctx context.Context, rawURL string, h http.Header) (*WSConn, *http.Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, err
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "http":
	default:
		return nil, nil, fmt.Errorf("testenv: websocket scheme %q not supported", u.Scheme)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	var nonce [16]byte
	rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req := &http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Header: http.Header{}}
	for k, vv := range h {
		req.Header[k] = append([]string(nil), vv...)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", key)
	if err := req.Write(c); err != nil {
		c.Close()
		return nil, nil, err
	}
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, req)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(res.Body)
		res.Body = io.NopCloser(strings.NewReader(string(body)))
		c.Close()
		return nil, res, fmt.Errorf("%w: %s: %s", ErrHandshake, res.Status, strings.TrimSpace(string(body)))
	}
	if got := res.Header.Get("Sec-WebSocket-Accept"); got != acceptKey(key) {
		c.Close()
		return nil, res, fmt.Errorf("testenv: Sec-WebSocket-Accept %q, want %q", got, acceptKey(key))
	}
	c.SetDeadline(time.Time{})
	return &WSConn{Conn: c, br: br, client: true}, res, nil
}

// AcceptWebSocket answers a WebSocket handshake on the server side with 101,
// the given subprotocol (none when empty) and the extra response headers h.
func AcceptWebSocket(w http.ResponseWriter, r *http.Request, protocol string, h http.Header) (*WSConn, error) {
	key := r.Header.Get("Sec-WebSocket-Key")
	if key == "" || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		http.Error(w, "not a websocket handshake", http.StatusBadRequest)
		return nil, errors.New("testenv: not a websocket handshake")
	}
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, err
	}
	res := http.Header{}
	for k, vv := range h {
		res[k] = vv
	}
	res.Set("Upgrade", "websocket")
	res.Set("Connection", "Upgrade")
	res.Set("Sec-WebSocket-Accept", acceptKey(key))
	if protocol != "" {
		res.Set("Sec-WebSocket-Protocol", protocol)
	}
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	res.Write(brw)
	brw.WriteString("\r\n")
	if err := brw.Flush(); err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return &WSConn{Conn: c, br: brw.Reader}, nil
}

func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// WriteFrame writes one final frame with opcode op.
func (c *WSConn) WriteFrame(op byte, payload []byte) error {
	hdr := make([]byte, 0, 14)
	hdr = append(hdr, 0x80|op)
	mask := byte(0)
	if c.client {
		mask = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, mask|byte(n))
	case n <= 0xffff:
		hdr = append(hdr, mask|126)
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	default:
		hdr = append(hdr, mask|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	var buf []byte
	if c.client {
		var key [4]byte
		rand.Read(key[:])
		buf = append(hdr, key[:]...)
		for i, b := range payload {
			buf = append(buf, b^key[i%4])
		}
	} else {
		buf = append(hdr, payload...)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.Conn.Write(buf)
	return err
}

// WriteText writes a text frame.
func (c *WSConn) WriteText(s string) error { return c.WriteFrame(OpText, []byte(s)) }

// WriteClose writes a close frame with code and reason.
func (c *WSConn) WriteClose(code uint16, reason string) error {
	return c.WriteFrame(OpClose, ClosePayload(code, reason))
}

// ReadFrame reads one frame and returns its opcode and unmasked payload.
func (c *WSConn) ReadFrame() (op byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return 0, nil, err
	}
	op = h[0] & 0x0f
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	var key [4]byte
	masked := h[1]&0x80 != 0
	if masked {
		if _, err := io.ReadFull(c.br, key[:]); err != nil {
			return 0, nil, err
		}
	}
	if n > 64<<20 {
		return 0, nil, fmt.Errorf("testenv: frame of %d bytes", n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c.br, payload); err != nil {
		return 0, nil, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	return op, payload, nil
}

// ReadMessage reads frames until a text or binary one and returns its
// payload; a close frame is returned as an error of type *CloseError.
func (c *WSConn) ReadMessage() ([]byte, error) {
	for {
		op, p, err := c.ReadFrame()
		if err != nil {
			return nil, err
		}
		switch op {
		case OpText, OpBinary:
			return p, nil
		case OpClose:
			code, reason := ParseClose(p)
			return nil, &CloseError{Code: code, Reason: reason}
		}
	}
}

// Read reads the raw bytes that follow the handshake, frames unparsed.
func (c *WSConn) Read(p []byte) (int, error) { return c.br.Read(p) }

// Close closes the connection without a closing handshake.
func (c *WSConn) Close() error { return c.Conn.Close() }

// CloseError is a close frame received by ReadMessage.
type CloseError struct {
	Code   uint16
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("testenv: websocket closed: %d %q", e.Code, e.Reason)
}

// ClosePayload encodes the payload of a close frame.
func ClosePayload(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

// ParseClose decodes the payload of a close frame; no code reads as 1005.
func ParseClose(p []byte) (code uint16, reason string) {
	if len(p) < 2 {
		return 1005, ""
	}
	return binary.BigEndian.Uint16(p), string(p[2:])
}
