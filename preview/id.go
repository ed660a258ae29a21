package preview

import (
	"crypto/rand"
	"encoding/base32"
)

// IDLength is the length of a session id: 128 random bits in lowercase
// base32 without padding, 26 characters from a-z and 2-7.
const IDLength = 26

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns a new session id: 128 bits from crypto/rand, lowercase and
// safe as a DNS label, so that it fits in preview-{id}.<domain>.
func NewID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand panics on a broken source)
	return idEncoding.EncodeToString(b[:])
}

// ValidID reports whether id has the form NewID gives: 26 characters from
// a-z and 2-7. A client-sent id is accepted only in this form: it ends up in a
// host name and a directory name.
func ValidID(id string) bool {
	if len(id) != IDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}
