package ssrproxy

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestHasToken(t *testing.T) {
	tests := []struct {
		values []string
		token  string
		fold   bool
		want   bool
	}{
		{[]string{"vite-hmr"}, "vite-hmr", false, true},
		{[]string{"graphql-ws, vite-hmr"}, "vite-hmr", false, true},
		{[]string{"graphql-ws", " vite-ping\t"}, "vite-ping", false, true},
		{[]string{"vite-hmrx"}, "vite-hmr", false, false},
		{[]string{"Vite-HMR"}, "vite-hmr", false, false},
		{[]string{"keep-alive, Upgrade"}, "upgrade", true, true},
		{[]string{",,"}, "", false, false},
		{nil, "upgrade", true, false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, hasToken(tt.values, tt.token, tt.fold), "%q in %q", tt.token, tt.values)
	}
}

// FuzzTokens checks the parser of comma-separated header values (Connection,
// Upgrade, Sec-WebSocket-Protocol: client input that routes a request)
// against a plain split.
func FuzzTokens(f *testing.F) {
	f.Add("vite-hmr", "x, y", "vite-hmr")
	f.Add(" , vite-ping ,", "", "vite-ping")
	f.Add("keep-alive,\tUpgrade", "", "upgrade")
	f.Add(",,,", ",", "")
	f.Fuzz(func(t *testing.T, a, b, token string) {
		values := []string{a, b}
		var want []string
		for _, v := range values {
			for _, e := range strings.Split(v, ",") {
				if e = strings.Trim(e, " \t"); e != "" {
					want = append(want, e)
				}
			}
		}
		var got []string
		for e := range tokens(values) {
			if e == "" || strings.Contains(e, ",") || strings.Trim(e, " \t") != e {
				t.Fatalf("element %q", e)
			}
			got = append(got, e)
		}
		assert.Equal(t, want, got)
		for _, fold := range []bool{false, true} {
			found := false
			for _, e := range want {
				found = found || e == token || fold && strings.EqualFold(e, token)
			}
			if hasToken(values, token, fold) != found {
				t.Fatalf("hasToken(%q, %q, %v) = %v", values, token, fold, !found)
			}
		}
		// Stopping early must not panic.
		for range tokens(values) {
			break
		}
	})
}

func wsFrame(op byte, masked bool, n int) []byte {
	b := []byte{0x80 | op}
	mask := byte(0)
	if masked {
		mask = 0x80
	}
	switch {
	case n < 126:
		b = append(b, mask|byte(n))
	case n <= 0xffff:
		b = append(b, mask|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, mask|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if masked {
		b = append(b, 1, 2, 3, 4)
	}
	return append(b, make([]byte, n)...)
}

func TestFrameTracker(t *testing.T) {
	tests := []struct {
		name       string
		stream     [][]byte
		boundary   bool
		closeFrame bool
	}{
		{"nothing", nil, true, false},
		{"one small frame", [][]byte{wsFrame(0x1, false, 5)}, true, false},
		{"16-bit length", [][]byte{wsFrame(0x2, false, 300)}, true, false},
		{"64-bit length", [][]byte{wsFrame(0x2, false, 70000)}, true, false},
		{"masked", [][]byte{wsFrame(0x1, true, 10)}, true, false},
		{"close", [][]byte{wsFrame(0x1, false, 3), wsFrame(0x8, false, 2)}, true, true},
		{"half a header", [][]byte{wsFrame(0x1, false, 300)[:3]}, false, false},
		{"half a payload", [][]byte{wsFrame(0x1, false, 300)[:100]}, false, false},
		{"empty payload", [][]byte{wsFrame(0x9, false, 0)}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f frameTracker
			var all []byte
			for _, p := range tt.stream {
				all = append(all, p...)
			}
			for i := range all { // one byte at a time: the worst split
				f.feed(all[i : i+1])
			}
			assert.Equal(t, tt.boundary, f.atBoundary())
			assert.Equal(t, tt.closeFrame, f.closed)
		})
	}
}

// FuzzFrameTracker feeds a byte stream from the dev server (untrusted: any
// bytes) in pieces and checks, after each piece, that the tracker knows
// whether the stream is between frames, against a parse of the whole.
//
// With a bound (max > 0, the client's side) it also checks what may go on
// after each piece, as toUpstream sends it (the held start of a header, then
// the piece's part): everything up to the first byte of a header that is
// not whole yet, never a byte of the first frame whose message goes over
// max or of anything after it.
func FuzzFrameTracker(f *testing.F) {
	f.Add(append(wsFrame(0x1, false, 5), wsFrame(0x8, false, 2)...), uint64(3), uint64(0))
	f.Add(wsFrame(0x2, true, 300), uint64(7), uint64(0))
	f.Add(wsFrame(0x2, false, 70000)[:20], uint64(1), uint64(0))
	f.Add([]byte{0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, uint64(2), uint64(0))
	f.Add(append(wsFrame(0x1, true, 5), wsFrame(0x2, true, 300)...), uint64(5), uint64(299))
	f.Add(append(append(fragment(0x1, false, true, 100), wsFrame(0x9, true, 3)...), fragment(0x0, true, true, 100)...), uint64(4), uint64(199))
	f.Fuzz(func(t *testing.T, data []byte, seed, max uint64) {
		// Reference: the stream offsets at which a frame ends, the spans of
		// the headers, and where the first frame over max starts.
		ends := map[int]bool{0: true}
		closedAt := -1
		type span struct{ start, end int }
		var headers []span
		cut, cutEnd := len(data), len(data)+1
		var msg uint64
	parse:
		for pos := 0; pos < len(data); {
			if pos+2 > len(data) {
				headers = append(headers, span{pos, pos + 2})
				break
			}
			hl := 2
			n := uint64(data[pos+1] & 0x7f)
			switch n {
			case 126:
				hl += 2
			case 127:
				hl += 8
			}
			if data[pos+1]&0x80 != 0 {
				hl += 4
			}
			headers = append(headers, span{pos, pos + hl})
			if pos+hl > len(data) {
				break parse
			}
			switch n {
			case 126:
				n = uint64(binary.BigEndian.Uint16(data[pos+2:]))
			case 127:
				n = binary.BigEndian.Uint64(data[pos+2:])
			}
			if data[pos]&0x0f == 0x8 && closedAt < 0 {
				closedAt = pos + hl
			}
			if op := data[pos] & 0x0f; max > 0 && cut == len(data) {
				total, over := n, n > max
				if op == 0x0 {
					total, over = msg+n, n > max || msg+n > max // msg <= max
				}
				switch {
				case over:
					cut, cutEnd = pos, pos+hl
				case op < 0x8 && data[pos]&0x80 != 0:
					msg = 0
				case op < 0x8:
					msg = total
				}
			}
			if n > uint64(len(data)-pos-hl) {
				break parse
			}
			pos += hl + int(n)
			ends[pos] = true
		}

		// mayPass is how much of the stream may have gone on after pos bytes.
		mayPass := func(pos int) int {
			for _, h := range headers {
				if h.start < pos && pos < h.end {
					pos = h.start
				}
			}
			return min(pos, cut)
		}

		tr := frameTracker{max: max}
		passed := 0
		for pos := 0; pos < len(data); {
			k := 1 + int(seed%7)
			seed = seed/7 + seed%13
			if k > len(data)-pos {
				k = len(data) - pos
			}
			held := tr.n
			if p := tr.feed(data[pos : pos+k]); p > 0 {
				passed += held + p
			}
			pos += k
			if want := mayPass(pos); max > 0 && passed != want {
				t.Fatalf("after %d bytes: %d went on, want %d (first frame over %d at %d)", pos, passed, want, max, cut)
			}
			if tr.tooBig != (pos >= cutEnd) {
				t.Fatalf("after %d bytes: tooBig = %v, first frame over %d at %d", pos, tr.tooBig, max, cut)
			}
			if tr.atBoundary() != ends[pos] {
				t.Fatalf("after %d bytes: atBoundary() = %v", pos, tr.atBoundary())
			}
			if tr.closed != (closedAt >= 0 && pos >= closedAt) {
				t.Fatalf("after %d bytes: closed = %v, close header ends at %d", pos, tr.closed, closedAt)
			}
		}
	})
}

// fragment is a frame like wsFrame's with the FIN bit as given.
func fragment(op byte, fin, masked bool, n int) []byte {
	b := wsFrame(op, masked, n)
	if !fin {
		b[0] &^= 0x80
	}
	return b
}

// TestFrameTrackerBound feeds a client's frames to a tracker with a bound,
// whole and one byte at a time, and checks how much of the stream may go
// on: everything before the first frame whose message goes over the bound,
// nothing of that frame.
func TestFrameTrackerBound(t *testing.T) {
	const max = 70000 // a 64-bit length at the bound
	cat := func(frames ...[]byte) []byte {
		var b []byte
		for _, f := range frames {
			b = append(b, f...)
		}
		return b
	}
	ok := wsFrame(0x1, true, 10)
	tests := []struct {
		name   string
		stream []byte
		pass   int // bytes that may go on
	}{
		{"at the bound", cat(ok, wsFrame(0x2, true, max), ok), 2*len(ok) + len(wsFrame(0x2, true, max))},
		{"one byte over", cat(ok, wsFrame(0x2, true, max+1), ok), len(ok)},
		{"unmasked, one byte over", cat(wsFrame(0x2, false, max+1)), 0},
		{"fragments at the bound", cat(fragment(0x1, false, true, max-100), fragment(0x0, false, true, 60), fragment(0x0, true, true, 40), ok),
			len(fragment(0x1, false, true, max-100)) + len(fragment(0x0, false, true, 60)) + len(fragment(0x0, true, true, 40)) + len(ok)},
		{"fragments one byte over", cat(fragment(0x1, false, true, max-100), fragment(0x0, false, true, 60), fragment(0x0, true, true, 41)),
			len(fragment(0x1, false, true, max-100)) + len(fragment(0x0, false, true, 60))},
		{"control frames inside a message do not count", cat(fragment(0x2, false, true, max-5), wsFrame(0x9, true, 100), fragment(0x0, true, true, 5), ok),
			len(fragment(0x2, false, true, max-5)) + len(wsFrame(0x9, true, 100)) + len(fragment(0x0, true, true, 5)) + len(ok)},
		{"each message counts alone", cat(wsFrame(0x1, true, max), wsFrame(0x1, true, max)), 2 * len(wsFrame(0x1, true, max))},
		{"a 64-bit length that would wrap", cat(ok, fragment(0x1, false, true, 10), []byte{0x80, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}),
			len(ok) + len(fragment(0x1, false, true, 10))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			whole := frameTracker{max: max}
			assert.Equal(t, tt.pass, whole.feed(tt.stream), "fed whole")
			assert.Equal(t, tt.pass < len(tt.stream), whole.tooBig)

			bytewise := frameTracker{max: max}
			passed := 0
			for i := range tt.stream {
				held := bytewise.n
				if k := bytewise.feed(tt.stream[i : i+1]); k > 0 {
					passed += held + k
				}
			}
			assert.Equal(t, tt.pass, passed, "fed a byte at a time")
			assert.Equal(t, tt.pass < len(tt.stream), bytewise.tooBig)
		})
	}

	var f frameTracker // no bound
	huge := []byte{0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5}
	assert.Equal(t, len(huge), f.feed(huge), "without a bound everything goes on")
	assert.False(t, f.tooBig)
}
