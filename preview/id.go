package preview

import (
	"crypto/rand"
	"encoding/base32"

	"github.com/vitehost/vitehost/preview/internal/request"
)

// IDLength is the length of the ids NewID makes: 128 random bits in
// lowercase base32 without padding, 26 characters from a-z and 2-7.
const IDLength = 26

// MaxIDLength is the longest session id: preview-{id} is one DNS label, and
// a label has at most 63 characters, 8 of which are "preview-".
const MaxIDLength = 63 - len("preview-")

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns a new session id: 128 bits from crypto/rand, lowercase and
// safe as a DNS label, so that it fits in preview-{id}.<domain>.
func NewID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand panics on a broken source)
	return idEncoding.EncodeToString(b[:])
}

// ValidID reports whether id can name a session: 1 to MaxIDLength
// characters from a-z, 0-9 and "-", with no "-" first or last, so that
// preview-{id} is one DNS label. Upper case is refused rather than folded:
// host names are case-insensitive, so "ABC" and "abc" would be one preview
// host, and an id is compared as the exact string everywhere else (the API's
// paths, the store, the session directory). Nothing else gets in: an id is a
// host name label, a directory name and a store key, and can never name
// another path (no ".", no "/").
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > MaxIDLength || id[0] == '-' || id[len(id)-1] == '-' {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// idRule is what the API says about an id that ValidID refuses.
const idRule = "a session id is 1 to 55 characters of lowercase a-z, 0-9 and inner hyphens (preview-{id} must be one DNS label)"

// badID is the error of a session id that ValidID refuses.
func badID(what, id string) error {
	if ValidID(lower(id)) {
		return request.Invalid(CodeBadID, "%s %q has upper case: host names are case-insensitive, so ids are lowercase (use %q)", what, id, lower(id))
	}
	return request.Invalid(CodeBadID, "%s %.70q is not a valid id: %s", what, id, idRule)
}

// lower lowercases ASCII letters only: an id is ASCII or invalid.
func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
