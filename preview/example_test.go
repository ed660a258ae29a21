package preview_test

import (
	"context"
	"log"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/vitehost/vitehost/preview"
)

// A preview service on one listener: the API on the main host, each
// session's preview on preview-{id}.localhost:8080.
func Example() {
	m, err := preview.New(&preview.Options{
		PublicURL: "http://localhost:8080", // previews at http://preview-{id}.localhost:8080
		Token:     "change-me",             // the API wants Authorization: Bearer change-me
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close(context.Background()) // stops every session's Vite

	// NewServer bounds what clients without the token can hold open.
	srv := preview.NewServer(m.Router(m.API()), nil)
	ln, err := net.Listen("tcp", "127.0.0.1:8080")
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go srv.Serve(ln)
	<-ctx.Done()
	srv.Shutdown(context.Background())
}

// A Server with bounds of its own: shorter timeouts, a cap on
// connections, and TLS.
func ExampleNewServer() {
	m, err := preview.New(&preview.Options{PublicURL: "https://jsbundler.example.com", Token: "change-me"})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close(context.Background())
	srv := preview.NewServer(m.Router(m.API()), &preview.ServerOptions{
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxConns:          4096,
	})
	ln, err := net.Listen("tcp", ":443")
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(srv.ServeTLS(ln, "cert.pem", "key.pem"))
}

// Creating and updating a session from Go, without the HTTP API.
func ExampleManager_Update() {
	m, err := preview.New(&preview.Options{PublicURL: "https://jsbundler.example.com"})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close(context.Background())
	ctx := context.Background()

	info, err := m.Create(ctx, &preview.CreateRequest{Files: []preview.File{
		{Name: "src/App.tsx", Content: "export default function App() { return <h1>v1</h1> }"},
	}})
	if err != nil {
		log.Fatal(err)
	}
	log.Println("open", info.PreviewURL)

	res, err := m.Update(ctx, info.SessionID, &preview.UpdateRequest{Files: []preview.File{
		{Name: "src/App.tsx", Content: "export default function App() { return <h1>v2</h1> }"},
	}})
	if err != nil {
		log.Fatal(err)
	}
	if res.HMR.Error != nil {
		log.Printf("does not compile: %s:%d: %s", res.HMR.Error.File, res.HMR.Error.Line, res.HMR.Error.Message)
	}
	log.Println("hmr:", res.HMR.Type, res.HMR.Paths)
}

// The probes and the metrics beside the API, on the API's host: what
// examples/previewserver serves.
func ExampleManager_Metrics() {
	m, err := preview.New(&preview.Options{
		PublicURL:      "https://jsbundler.example.com",
		Token:          "change-me",                         // the API and /metrics want it
		AllowedOrigins: []string{"https://app.example.com"}, // a browser app that calls the API
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close(context.Background())
	go m.Prepare(context.Background()) // /readyz turns 200 once the template's packages are installed

	host := http.NewServeMux()
	host.Handle("GET /healthz", m.Healthz())
	host.Handle("GET /readyz", m.Readyz())
	host.Handle("GET /metrics", m.Metrics())
	host.Handle("/", m.API())
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", m.Router(host)))
}
