package redisstore_test

import (
	"context"
	"log"
	"net/http"
	"os"

	"github.com/vitehost/vitehost/preview"
	"github.com/vitehost/vitehost/preview/redisstore"
)

// One node of a preview service that several nodes serve: the same Redis,
// the same PublicURL and API token on every node; each node its own NodeID
// and the internal address at which the other nodes reach its handler.
func Example() {
	store, err := redisstore.New(os.Getenv("REDIS_URL"), nil) // redis://:password@redis.internal:6379/0
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	if err := store.Ping(context.Background()); err != nil {
		log.Fatal(err)
	}

	m, err := preview.New(&preview.Options{
		PublicURL: "https://jsbundler.example.com",
		Token:     os.Getenv("PREVIEW_TOKEN"),
		Store:     store,
		NodeID:    os.Getenv("NODE_ID"),   // node-1
		NodeAddr:  os.Getenv("NODE_ADDR"), // 10.0.0.11:8080, where this node listens
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close() // the sessions stay in Redis: another node takes them over

	log.Fatal(http.ListenAndServe(":8080", m.Router(m.API())))
}
