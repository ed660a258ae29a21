package closing

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBindEndsWithClosing(t *testing.T) {
	closing, shut := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	r := httptest.NewRequest("GET", "/", nil)
	ctx, done := Bind(r, httptest.NewRecorder(), closing, &wg, time.Second)
	require.NoError(t, ctx.Err())
	shut()
	<-ctx.Done() // the request's work sees the close
	done()
	wg.Wait() // returns: the callback was counted and has ended
}

func TestBindDoneBeforeClosing(t *testing.T) {
	closing, shut := context.WithCancel(context.Background())
	defer shut()
	var wg sync.WaitGroup
	r := httptest.NewRequest("GET", "/", nil)
	ctx, done := Bind(r, httptest.NewRecorder(), closing, &wg, time.Second)
	done()
	require.Error(t, ctx.Err(), "done ends the request's context")
	wg.Wait() // returns: the callback that will never run is not counted
}

func TestBindEndsWithRequest(t *testing.T) {
	var wg sync.WaitGroup
	rctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequest("GET", "/", nil).WithContext(rctx)
	ctx, done := Bind(r, httptest.NewRecorder(), context.Background(), &wg, time.Second)
	defer done()
	cancel()
	<-ctx.Done()
}
