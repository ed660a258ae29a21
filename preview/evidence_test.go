package preview_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This file is what the hostile suite sees of the service: every byte a
// tenant gets back (API answers, pages, modules, error payloads, HMR
// messages) is kept as evidence, and the evidence is searched for the
// host's secrets.

// secret is a value of the host that no tenant may see.
type secret struct {
	name, value string
}

// randomMarker returns a value that appears nowhere by chance.
func randomMarker(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// answer is one answer a tenant got.
type answer struct {
	where, body string
}

// evidence is everything a tenant got back from the service. Its methods
// are safe for concurrent use: the HMR recorder adds from its goroutine.
type evidence struct {
	mu   sync.Mutex
	seen []answer
}

func (e *evidence) add(where, body string) {
	e.mu.Lock()
	e.seen = append(e.seen, answer{where, body})
	e.mu.Unlock()
}

func (e *evidence) all() []answer {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]answer(nil), e.seen...)
}

// contains reports whether any answer holds s (as a secret would appear).
func (e *evidence) contains(s string) bool {
	for _, x := range e.all() {
		if strings.Contains(x.body, s) {
			return true
		}
	}
	return false
}

// assertClean fails the test for every answer that holds a secret, in
// plain text or in base64 (an ?inline import or a data: URL encodes it),
// naming the secrets and quoting the first.
func (e *evidence) assertClean(t *testing.T, secrets []secret) {
	t.Helper()
	all := e.all()
	require.NotEmpty(t, all, "no answer was collected: the probe tested nothing")
	for _, x := range all {
		var names []string
		quote := ""
		for _, s := range secrets {
			for _, f := range encodings(s.value) {
				if i := strings.Index(x.body, f); i >= 0 {
					names = append(names, s.name)
					if quote == "" {
						quote = excerpt(x.body, i, len(f))
					}
					break
				}
			}
		}
		if len(names) > 0 {
			assert.Failf(t, "a secret reached the tenant", "in %s: %s\n...%s...", x.where, strings.Join(names, ", "), quote)
		}
	}
}

// encodings returns v and the base64 forms it takes inside a longer base64
// text, at each of the three alignments.
func encodings(v string) []string {
	forms := []string{v}
	for skip := range 3 {
		rest := v[skip:]
		rest = rest[:len(rest)/3*3]
		forms = append(forms, base64.StdEncoding.EncodeToString([]byte(rest)))
	}
	return forms
}

func excerpt(body string, i, n int) string {
	lo, hi := max(0, i-80), min(len(body), i+n+80)
	return body[lo:hi]
}

// collect makes ev the recorder of every answer of this API call: it
// returns what svc.api returns.
func (s *service) collect(t *testing.T, ev *evidence, method, path string, body any) (int, apiResponse) {
	t.Helper()
	status, resp := s.api(t, method, path, body)
	ev.add(fmt.Sprintf("API %s %s (%d)", method, path, status), string(resp.Raw))
	return status, resp
}

// fetch gets u through the router with the preview host, as a browser
// would, and adds the answer to ev. Go sends the path as written: "..",
// "//" and escapes reach the service unchanged.
func (s *service) fetch(t *testing.T, ev *evidence, u string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "*/*")
	resp, err := s.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	ev.add(fmt.Sprintf("GET %s (%d)", u, resp.StatusCode), string(b))
	return resp.StatusCode, string(b)
}

// References that a page or a module makes to other URLs of its origin:
// script and link tags, static and dynamic imports, CSS url() and @import.
var references = []*regexp.Regexp{
	regexp.MustCompile(`(?:src|href)\s*=\s*["']([^"']+)["']`),
	regexp.MustCompile(`(?:\bfrom|\bimport)\s*\(?\s*["']([^"']+)["']`),
	regexp.MustCompile(`url\(\s*["']?([^"')\s]+)["']?\s*\)`),
	regexp.MustCompile(`new URL\(\s*["']([^"']+)["']`),
	regexp.MustCompile(`["'](/@fs/[^"']+)["']`), // an ?url import's URL
}

// crawled are the bodies a crawl got, by path and query.
type crawled map[string]string

// module returns the body of the module at path, whatever its query (an
// importer adds ?t= to a module that HMR updated).
func (c crawled) module(path string) string {
	for p, body := range c {
		if strings.SplitN(p, "?", 2)[0] == path {
			return body
		}
	}
	return ""
}

// crawl loads the page at previewURL and every module it reaches, the way a
// browser does, adding each answer (error pages too) to ev.
func (s *service) crawl(t *testing.T, ev *evidence, previewURL string) crawled {
	t.Helper()
	const maxURLs = 400
	bodies := crawled{}
	queue := []string{"/"}
	for len(queue) > 0 && len(bodies) < maxURLs {
		p := queue[0]
		queue = queue[1:]
		if _, done := bodies[p]; done {
			continue
		}
		_, body := s.fetch(t, ev, previewURL+p)
		bodies[p] = body
		for _, re := range references {
			for _, m := range re.FindAllStringSubmatch(body, -1) {
				if next, ok := sameOrigin(p, m[1]); ok {
					queue = append(queue, next)
				}
			}
		}
	}
	return bodies
}

// sameOrigin resolves ref against the path from and reports whether it
// names a path of the same origin.
func sameOrigin(from, ref string) (string, bool) {
	if strings.HasPrefix(ref, "data:") || strings.HasPrefix(ref, "#") || strings.Contains(ref, "${") {
		return "", false
	}
	base, err := url.Parse("http://origin" + from)
	if err != nil {
		return "", false
	}
	u, err := base.Parse(ref)
	if err != nil || u.Host != "origin" {
		return "", false
	}
	return u.RequestURI(), true
}

// hmrRecorder reads every message of a session's HMR socket into the
// evidence, and hands each to whoever waits for one.
type hmrRecorder struct {
	conn *websocket.Conn
	msgs chan map[string]any
	done chan struct{}
}

// recordHMR opens created's HMR socket as the page does and records it
// until the test ends.
func (s *service) recordHMR(t *testing.T, ev *evidence, created apiResponse) *hmrRecorder {
	t.Helper()
	conn := s.hmrSocket(t, created)
	r := &hmrRecorder{conn: conn, msgs: make(chan map[string]any, 256), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			ev.add("HMR message of "+created.SessionID, string(data))
			var m map[string]any
			if json.Unmarshal(data, &m) == nil {
				select {
				case r.msgs <- m:
				default: // nobody waits; the evidence has it
				}
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-r.done
	})
	return r
}

// next returns the first message that match accepts, within the deadline.
func (r *hmrRecorder) next(t *testing.T, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case m := <-r.msgs:
			if match(m) {
				return m
			}
		case <-r.done:
			require.FailNow(t, "the HMR socket closed")
		case <-deadline:
			require.FailNow(t, "no matching HMR message before the deadline")
		}
	}
}

// drain forgets the messages received so far (they are in the evidence).
func (r *hmrRecorder) drain() {
	for {
		select {
		case <-r.msgs:
		default:
			return
		}
	}
}
