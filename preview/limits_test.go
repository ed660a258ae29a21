package preview

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/vitehost/vitehost/ssrproxy"
)

// TestLimitsWebSocketMessage checks that Limits.MaxWebSocketMessage takes
// ssrproxy's default when it is not set, and keeps a value it is given.
func TestLimitsWebSocketMessage(t *testing.T) {
	assert.Equal(t, int64(ssrproxy.DefaultMaxViteMessage), Limits{}.withDefaults().MaxWebSocketMessage)
	assert.Equal(t, int64(ssrproxy.DefaultMaxViteMessage), Limits{MaxWebSocketMessage: -1}.withDefaults().MaxWebSocketMessage)
	assert.Equal(t, int64(4096), Limits{MaxWebSocketMessage: 4096}.withDefaults().MaxWebSocketMessage)
}
