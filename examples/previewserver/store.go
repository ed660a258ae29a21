package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/vitehost/vitehost/preview"
	"github.com/vitehost/vitehost/preview/redisstore"
)

// openStore returns the session store the -redis flag asks for: nil (the
// manager's in-memory store) when it is empty, else a Redis store that
// answered a ping.
func openStore(redisURL string, log *slog.Logger) (preview.Store, func(), error) {
	if redisURL == "" {
		return nil, func() {}, nil
	}
	s, err := redisstore.New(redisURL, &redisstore.Options{Logger: log})
	if err != nil {
		return nil, nil, fmt.Errorf("-redis: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, nil, fmt.Errorf("-redis: %w", err)
	}
	return s, func() { s.Close() }, nil
}
