package load

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// A finished run keeps no connection open: the next run (the next step of
// a bench search) starts against a server holding none of this one's.
func TestAFinishedRunHoldsNoConnections(t *testing.T) {
	var open, opened atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond) // several requests in flight: several connections
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			open.Add(1)
			opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	srv.Start()
	defer srv.Close()
	s := scenarioAt(t, "steady", 200, time.Second)
	if _, err := Run(context.Background(), Config{RunID: "conns", Scenario: s, Targets: []Target{{"rpc", srv.URL}}}); err != nil {
		t.Fatal(err)
	}
	if opened.Load() < 2 {
		t.Fatalf("the run opened %d connections: want several", opened.Load())
	}
	deadline := time.Now().Add(5 * time.Second)
	for open.Load() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of the run's %d connections still open after it ended", open.Load(), opened.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
