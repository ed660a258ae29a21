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
func FuzzFrameTracker(f *testing.F) {
	f.Add(append(wsFrame(0x1, false, 5), wsFrame(0x8, false, 2)...), uint64(3))
	f.Add(wsFrame(0x2, true, 300), uint64(7))
	f.Add(wsFrame(0x2, false, 70000)[:20], uint64(1))
	f.Add([]byte{0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, uint64(2))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		// Reference: the stream offsets at which a frame ends.
		ends := map[int]bool{0: true}
		closedAt := -1
	parse:
		for pos := 0; pos+2 <= len(data); {
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
			if n > uint64(len(data)-pos-hl) {
				break parse
			}
			pos += hl + int(n)
			ends[pos] = true
		}

		var tr frameTracker
		for pos := 0; pos < len(data); {
			k := 1 + int(seed%7)
			seed = seed/7 + seed%13
			if k > len(data)-pos {
				k = len(data) - pos
			}
			tr.feed(data[pos : pos+k])
			pos += k
			if tr.atBoundary() != ends[pos] {
				t.Fatalf("after %d bytes: atBoundary() = %v", pos, tr.atBoundary())
			}
			if tr.closed != (closedAt >= 0 && pos >= closedAt) {
				t.Fatalf("after %d bytes: closed = %v, close header ends at %d", pos, tr.closed, closedAt)
			}
		}
	})
}
