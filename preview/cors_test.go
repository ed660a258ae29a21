package preview

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCrossOrigin(t *testing.T) {
	tests := []struct {
		origin string
		cross  bool
	}{
		{"", false},
		{"http://preview-x.localhost:8080", false},
		{"https://PREVIEW-X.localhost:8080", false}, // the host is what tells previews apart
		{"http://preview-y.localhost:8080", true},
		{"http://preview-x.localhost:9090", true},
		{"http://localhost:8080", true},
		{"null", true},
		{"%zz", true},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "http://preview-x.localhost:8080/", nil)
		if tt.origin != "" {
			r.Header.Set("Origin", tt.origin)
		}
		assert.Equal(t, tt.cross, crossOrigin(r), "Origin %q", tt.origin)
	}
}

// TestNoCORS checks that the headers go whichever way the handler sends
// them: WriteHeader, a first Write, or a Flush.
func TestNoCORS(t *testing.T) {
	cors := func(w http.ResponseWriter) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		w.Header().Set("Content-Type", "text/plain")
	}
	for name, h := range map[string]func(http.ResponseWriter){
		"WriteHeader": func(w http.ResponseWriter) { cors(w); w.WriteHeader(204) },
		"Write":       func(w http.ResponseWriter) { cors(w); w.Write([]byte("page")) },
		"Flush":       func(w http.ResponseWriter) { cors(w); http.NewResponseController(w).Flush() },
	} {
		rec := httptest.NewRecorder()
		h(noCORS{rec})
		assert.Empty(t, rec.Result().Header.Get("Access-Control-Allow-Origin"), name)
		assert.Empty(t, rec.Result().Header.Get("Access-Control-Allow-Credentials"), name)
		assert.Equal(t, "text/plain", rec.Result().Header.Get("Content-Type"), name)
	}
}
