package main

import (
	"errors"
	"log/slog"

	"github.com/vitehost/vitehost/preview"
)

// openStore returns the session store the -redis flag asks for: nil (the
// manager's in-memory store) when it is empty.
func openStore(redisURL string, log *slog.Logger) (preview.Store, func(), error) {
	if redisURL == "" {
		return nil, func() {}, nil
	}
	return nil, nil, errors.New("-redis: the Redis store is not built into this binary yet")
}
