package ssrproxy

// closeFrame returns an unmasked close frame (server to client) with code
// and a reason of at most 123 bytes.
func closeFrame(code uint16, reason string) []byte {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	b := make([]byte, 0, 4+len(reason))
	b = append(b, 0x80|opClose, byte(2+len(reason)), byte(code>>8), byte(code))
	return append(b, reason...)
}

// opClose is the opcode of a close frame (RFC 6455, 5.5.1).
const opClose = 0x8

// maxFrameHeader is the longest WebSocket frame header: 2 bytes, an 8-byte
// extended length and a 4-byte mask.
const maxFrameHeader = 14

// frameTracker follows the frames in a stream of WebSocket bytes, fed in
// pieces of any size, to tell whether the stream is between two frames
// (RFC 6455, 5.2). It reads the headers only; payloads are skipped.
type frameTracker struct {
	hdr    [maxFrameHeader]byte // the header being read
	n      int                  // how many bytes of it have been fed
	left   uint64               // payload bytes of the current frame still to come
	closed bool                 // a close frame went by
}

// feed advances the tracker over p.
func (f *frameTracker) feed(p []byte) {
	for len(p) > 0 {
		if f.left > 0 {
			k := f.left
			if uint64(len(p)) < k {
				k = uint64(len(p))
			}
			f.left -= k
			p = p[k:]
			continue
		}
		f.hdr[f.n] = p[0]
		f.n++
		p = p[1:]
		if f.n < 2 || f.n < frameHeaderLen(f.hdr[1]) {
			continue
		}
		f.left = framePayloadLen(f.hdr[:f.n])
		if f.hdr[0]&0x0f == opClose {
			f.closed = true
		}
		f.n = 0
	}
}

// atBoundary reports whether everything fed so far ends with a whole frame.
func (f *frameTracker) atBoundary() bool { return f.n == 0 && f.left == 0 }

// frameHeaderLen returns the length of a frame header from its second byte.
func frameHeaderLen(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4 // masking key
	}
	return n
}

// framePayloadLen returns the payload length of a complete frame header.
func framePayloadLen(h []byte) uint64 {
	switch l := h[1] & 0x7f; l {
	case 126:
		return uint64(h[2])<<8 | uint64(h[3])
	case 127:
		var n uint64
		for _, b := range h[2:10] {
			n = n<<8 | uint64(b)
		}
		return n
	default:
		return uint64(l)
	}
}
