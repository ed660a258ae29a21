package vite

import (
	"bytes"
	"reflect"
	"testing"
	"unicode/utf8"
)

// FuzzParseMessage feeds the stdout line parser: the runner's process also
// runs the project's config and plugins, which may print anything.
func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{
		`{"vitehost":"ready","port":5173,"hmrPort":24811,"version":"8.3.8","token":"aB-_9"}`,
		`{"vitehost":"loaded","version":"7.3.8"}`,
		`{"vitehost":"error","code":"EADDRINUSE","port":80,"message":"x"}`,
		`{"vitehost":"listen","port":3000}`,
		`{"vitehost":"vite","token":"t"}`,
		`{"vitehost":"token","token":"t","port":-1}`,
		`{"vitehost":"ready","port":1e400}`,
		`{"vitehost":"ready","unix":true,"version":"8.3.8","token":"aB-_9"}`,
		`{"vitehost":"ready","unix":true,"port":22,"hmrPort":6379,"token":"t"}`,
		`8:11:00 AM [vite] (client) hmr update /src/App.jsx`,
		`{"vitehost":`,
		`{"vitehost":"held","id":3}`,
		`{"vitehost":"batch","id":3,"batch":{"updates":[{"type":"js-update","path":"/src/App.tsx","acceptedPath":"/src/App.tsx","timestamp":1}],"errors":[{"message":"x","file":"src/B.tsx","line":3,"column":1}]}}`,
		`{"vitehost":"batch","id":4}`,
		`{"vitehost":"event","event":{"type":"client-error","kind":"error","message":"boom","page":"http://x/","stack":"at App (src/App.tsx:3:9)","file":"src/App.tsx","line":3,"column":9}}`,
		`{"vitehost":"event","event":{"type":"compile-error","error":{"message":"\u001b[31mx","line":-4}}}`,
		`{"vitehost":"event","event":{"type":"hmr","fullReload":true,"reloadPath":"*"}}`,
		`{"vitehost":"event","event":{"type":"compile-error","error":{"message":"\u001b"}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := parseMessage(line)
		if err != nil {
			if !reflect.DeepEqual(m, message{}) {
				t.Fatalf("error %v with a message %+v", err, m)
			}
			if !bytes.HasPrefix(bytes.TrimSpace(line), []byte(messagePrefix)) && err != errNotMessage {
				t.Fatalf("ordinary line reported as a bad protocol line: %v", err)
			}
			return
		}
		if !validPort(m.Port, true) || !validPort(m.HMRPort, true) {
			t.Fatalf("port out of range: %+v", m)
		}
		if !tokenChars(m.Token) || len(m.Token) > maxToken {
			t.Fatalf("token %q", m.Token)
		}
		if !printable(m.Version) || len(m.Version) > maxVersion || len(m.Message) > maxErrorText {
			t.Fatalf("fields: %+v", m)
		}
		if m.Kind == msgReady && (m.Token == "" || m.Unix != (m.Port == 0) || m.Unix != (m.HMRPort == 0)) {
			t.Fatalf("incomplete ready: %+v", m)
		}
		switch m.Kind {
		case msgBatch:
			if m.ID == 0 || m.Batch == nil || len(m.Batch.Updates) > maxUpdates || len(m.Batch.Errors) > maxErrors {
				t.Fatalf("batch: %+v", m)
			}
			for _, e := range m.Batch.Errors {
				checkText(t, e.Message, maxErrorText)
				checkText(t, e.File, maxPath)
				if e.Line < 0 || e.Column < 0 {
					t.Fatalf("error position %d:%d", e.Line, e.Column)
				}
			}
		case msgEvent:
			switch e := m.event; e.Type {
			case EventHMR:
			case EventCompileError:
				checkText(t, e.Error.Message, maxErrorText)
			case EventClientError:
				checkText(t, e.Client.Message, maxErrorText)
				checkText(t, e.Client.Stack, maxStack)
				checkText(t, e.Client.Page, maxPath)
			default:
				t.Fatalf("event of type %q", e.Type)
			}
		}
	})
}

// checkText fails t unless s is valid UTF-8 of at most n bytes without
// terminal escapes.
func checkText(t *testing.T, s string, n int) {
	t.Helper()
	if len(s) > n || !utf8.ValidString(s) || bytes.IndexByte([]byte(s), 0x1b) >= 0 {
		t.Fatalf("text of %d bytes: %q", len(s), s)
	}
}

// FuzzParsePackageJSON feeds package.json parsing and detection: the preview
// service starts dev servers for package.json files that clients send.
func FuzzParsePackageJSON(f *testing.F) {
	for _, s := range []string{
		`{"dependencies":{"nuxt":"^4.4.0"}}`,
		`{"devDependencies":{"vite":"^8"},"version":"1.0.0"}`,
		`{}`, `[]`, `null`, `{"dependencies":{"nuxt":4}}`, ` {"a":`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parsePackageJSON(data)
		if err != nil {
			if p != nil {
				t.Fatal("a package with an error")
			}
			return
		}
		if fw := detect(p); fw != Vite && fw != Nuxt {
			t.Fatalf("detect gave %q", fw)
		}
	})
}
