package bench

import (
	"strings"
	"testing"
	"text/template"
)

// TestNginxConfigs renders both of the bench's nginx configurations: each
// holds nginxMain's directives and its own, inside the http block.
func TestNginxConfigs(t *testing.T) {
	for name, c := range map[string]struct {
		conf *template.Template
		data map[string]string
		own  []string
	}{
		"proxy":  {nginxConf, map[string]string{"HTTP": "127.0.0.1:1", "HMR": "127.0.0.1:2"}, []string{"upstream vite { server 127.0.0.1:1;", "upstream vitehmr { server 127.0.0.1:2;"}},
		"static": {nginxStaticConf, map[string]string{"Root": "/srv/dist"}, []string{"root /srv/dist;", "sendfile on;"}},
	} {
		c.data["Dir"], c.data["Listen"] = "/tmp/ngx", "127.0.0.1:3"
		var b strings.Builder
		if err := c.conf.Execute(&b, c.data); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out := b.String()
		for _, want := range append(c.own, "daemon off;", "pid /tmp/ngx/nginx.pid;", "scgi_temp_path /tmp/ngx/scgi;", "listen 127.0.0.1:3;") {
			if !strings.Contains(out, want) {
				t.Errorf("%s: no %q in\n%s", name, want, out)
			}
		}
		if i, j := strings.Index(out, "http {"), strings.Index(out, c.own[0]); i < 0 || j < i {
			t.Errorf("%s: its directives are not in the http block:\n%s", name, out)
		}
		if strings.Contains(out, "<no value>") {
			t.Errorf("%s: a value is missing:\n%s", name, out)
		}
	}
}
