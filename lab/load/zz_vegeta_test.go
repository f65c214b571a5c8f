package load

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func TestZZPureVegeta(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(trivialHandler())
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	for _, rate := range []int{5000, 10000} {
		conns.Store(0)
		atk := vegeta.NewAttacker()
		tr := vegeta.NewStaticTargeter(vegeta.Target{Method: "POST", URL: srv.URL + "/api/ratings", Body: []byte(`{"movie_id":1,"rating":5}`)})
		var m vegeta.Metrics
		for r := range atk.Attack(tr, vegeta.ConstantPacer{Freq: rate, Per: time.Second}, time.Second, "x") {
			m.Add(r)
		}
		m.Close()
		t.Logf("pure vegeta rate %d: reqs %d rate %.1f conns %d p99 %s", rate, m.Requests, m.Rate, conns.Load(), m.Latencies.P99)
	}
}
