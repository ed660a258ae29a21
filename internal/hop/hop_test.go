package hop

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRemove(t *testing.T) {
	h := http.Header{
		"Connection":          {"keep-alive, X-Secret", " close"},
		"X-Secret":            {"1"},
		"Keep-Alive":          {"timeout=5"},
		"Te":                  {"trailers"},
		"Upgrade":             {"websocket"},
		"Proxy-Authorization": {"Basic x"},
		"X-Kept":              {"yes"},
	}
	Remove(h)
	assert.Equal(t, http.Header{"X-Kept": {"yes"}}, h)
}

func TestHasToken(t *testing.T) {
	assert.True(t, HasToken([]string{"keep-alive,  Upgrade"}, "upgrade", true))
	assert.False(t, HasToken([]string{"keep-alive,  Upgrade"}, "upgrade", false))
	assert.False(t, HasToken([]string{"upgraded"}, "upgrade", true))
	assert.False(t, HasToken(nil, "upgrade", true))
}
