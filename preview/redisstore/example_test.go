package redisstore_test

import (
	"context"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/vitehost/vitehost/preview"
	"github.com/vitehost/vitehost/preview/redisstore"
)

// One node of a preview service that several nodes serve behind a load
// balancer: the same Redis, PublicURL and API token on every node; each node
// its own NodeID, and as NodeAddr the internal address at which the other
// nodes reach its handler.
func Example() {
	store, err := redisstore.New(os.Getenv("REDIS_URL"), nil) // redis://:password@redis.internal:6379/0
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := store.Ping(ctx); err != nil {
		log.Fatal(err)
	}

	m, err := preview.New(&preview.Options{
		PublicURL: "https://jsbundler.example.com",
		Token:     os.Getenv("PREVIEW_TOKEN"),
		Store:     store,
		NodeID:    os.Getenv("NODE_ID"),   // node-1
		NodeAddr:  os.Getenv("NODE_ADDR"), // 10.0.0.11:8080: this listener, as the other nodes reach it
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close(context.Background()) // the sessions stay in Redis: the other nodes take them over

	srv := &http.Server{Addr: ":8080", Handler: m.Router(m.API())}
	go srv.ListenAndServe()
	<-ctx.Done()
	srv.Shutdown(context.Background())
}
