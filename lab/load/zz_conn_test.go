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

func TestZZConnReuse(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(trivialHandler())
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	for _, rate := range []float64{5000} {
		conns.Store(0)
		s := &Scenario{Name: "bench", Seed: 1, Mix: Mix{Rating: 1}, Arrival: Arrival{Executor: ExecutorConstant, Rate: rate, Duration: Duration(time.Second)}}
		s.applyDefaults()
		sum, err := Run(context.Background(), Config{RunID: "x", Scenario: s, Targets: []Target{{"b", srv.URL}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("rate %v: sent %d achieved %.1f conns %d p99 %.2f", rate, sum.Variants[0].Sent, sum.Variants[0].AchievedRate, conns.Load(), sum.Variants[0].Latency.P99)
	}
}
