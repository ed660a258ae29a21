package ssrproxy

import (
	"net/http"
	"strconv"
	"strings"
)

// probeHeader marks the boot page's "is the dev server back?" requests. The
// proxy never answers them with the boot page, so a probe tells 503 from a
// real answer, and it removes the header before it relays one.
const probeHeader = "X-Vitehost-Probe"

// isNavigation reports whether r is a browser loading a page, the request
// that gets the boot page instead of a bare 503.
func isNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet || r.Header.Get(probeHeader) != "" || isUpgrade(r.Header) {
		return false
	}
	for _, v := range r.Header.Values("Accept") {
		if strings.Contains(strings.ToLower(v), "text/html") {
			return true
		}
	}
	return false
}

// writeBootPage answers a navigation with 503 and bootPage.
func writeBootPage(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(bootPage)))
	h.Del("Content-Encoding")
	w.WriteHeader(http.StatusServiceUnavailable)
	w.Write([]byte(bootPage))
}

// bootPage is shown while the dev server is starting. Its script asks for the
// same URL again, marked with probeHeader, and reloads only once the answer
// is not a 503: the reload then shows the real page, so the page cannot reload
// itself in a loop. A dev server that is up but not ready yet (nuxi dev
// answers 503 with its own loading page) keeps it waiting too. The delay
// grows to 2 s so that a server that stays down costs little.
const bootPage = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Starting the dev server…</title>
<style>
body { margin: 0; min-height: 100vh; display: grid; place-items: center; font: 16px/1.5 system-ui, sans-serif; color: #333; background: #fafafa; }
main { max-width: 32em; padding: 2em; text-align: center; }
small { color: #888; }
</style>
</head>
<body>
<main>
<h1>The dev server is starting…</h1>
<p>This page shows the app as soon as the dev server answers.</p>
<p><small id="vitehost-status">waiting</small></p>
<noscript><p>Reload the page in a moment.</p></noscript>
</main>
<script>
(function () {
  var delay = 250, tries = 0;
  var status = document.getElementById('vitehost-status');
  function again() {
    tries++;
    if (status) status.textContent = 'waiting (checked ' + tries + (tries === 1 ? ' time)' : ' times)');
    delay = Math.min(delay * 1.5, 2000);
    setTimeout(check, delay);
  }
  function check() {
    fetch(location.href, {
      headers: { 'X-Vitehost-Probe': '1' },
      cache: 'no-store',
      credentials: 'same-origin',
      redirect: 'manual'
    }).then(function (res) {
      if (res.status === 503) { again(); return; }
      location.reload();
    }, again);
  }
  setTimeout(check, delay);
})();
</script>
</body>
</html>
`
