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

// The opcodes the trackers tell apart (RFC 6455, 5.2).
const (
	opContinuation = 0x0
	opClose        = 0x8
)

// maxFrameHeader is the longest WebSocket frame header: 2 bytes, an 8-byte
// extended length and a 4-byte mask.
const maxFrameHeader = 14

// frameTracker follows the frames in a stream of WebSocket bytes, fed in
// pieces of any size, to tell whether the stream is between two frames
// (RFC 6455, 5.2), and, when max is set, whether a message went over it. It
// reads the headers only; payloads are skipped.
type frameTracker struct {
	hdr    [maxFrameHeader]byte // the header being read
	n      int                  // how many bytes of it have been fed
	left   uint64               // payload bytes of the current frame still to come
	closed bool                 // a close frame went by

	// max bounds a message: a frame's payload, or the payloads of a
	// fragmented message's frames together. Zero means no bound.
	max    uint64
	msg    uint64 // payload bytes of the unfinished fragmented message so far
	tooBig bool   // a frame went over max
}

// feed advances the tracker over p and returns how many bytes of p may go
// on: those up to the first byte of a header that is not whole yet (its
// bytes are in hdr[:n] until it is) or of the first frame over max. Once a
// frame went over max, nothing more may go on; the tracker still follows
// the frames, so that a close frame after it is seen.
func (f *frameTracker) feed(p []byte) int {
	pass := 0
	for i := 0; i < len(p); {
		if f.left > 0 {
			k := f.left
			if uint64(len(p)-i) < k {
				k = uint64(len(p) - i)
			}
			f.left -= k
			i += int(k)
		} else {
			f.hdr[f.n] = p[i]
			f.n++
			i++
			if f.n < 2 || f.n < frameHeaderLen(f.hdr[1]) {
				continue
			}
			f.left = framePayloadLen(f.hdr[:f.n])
			if f.hdr[0]&0x0f == opClose {
				f.closed = true
			}
			f.n = 0
			if !f.tooBig && !f.admit(f.hdr[0], f.left) {
				f.tooBig = true
			}
		}
		if !f.tooBig {
			pass = i
		}
	}
	return pass
}

// admit reports whether a frame whose first header byte is b0 and whose
// payload is n bytes keeps its message within max, and counts it.
func (f *frameTracker) admit(b0 byte, n uint64) bool {
	if f.max == 0 {
		return true
	}
	op := b0 & 0x0f
	if op >= opClose {
		// A control frame is no part of the message around it (RFC 6455,
		// 5.4); RFC 6455 allows it 125 bytes.
		return n <= f.max
	}
	prior := uint64(0)
	if op == opContinuation {
		prior = f.msg
	}
	if n > f.max-prior {
		return false
	}
	f.msg = prior + n
	if b0&0x80 != 0 { // FIN: the message is whole
		f.msg = 0
	}
	return true
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
