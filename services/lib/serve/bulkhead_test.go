package serve_test

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/lib/serve"
	"github.com/ratingslab/lab/services/lib/servetest"
)

// A part handles at most --max-inflight requests, queues --max-queue more
// for at most --queue-timeout, and answers the rest 503 at once, marked as
// its own overload.
func TestBulkheadQueuesThenRejects(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	})
	mux.HandleFunc("GET /fast", func(w http.ResponseWriter, r *http.Request) {})
	reg := prometheus.NewRegistry()
	s := serve.New(serve.Options{Public: mux, Registry: reg})
	if err := s.SetLimits(serve.Limits{MaxInflight: 1, MaxQueue: 1, QueueTimeout: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	base, _ := servetest.StartBoth(t, s)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); servetest.Call(t, "GET", base+"/slow", "") }()
	<-entered // the only slot is taken

	queued := make(chan servetest.Answer, 1)
	go func() { queued <- servetest.Call(t, "GET", base+"/fast", "") }()
	servetest.Eventually(t, 5*time.Second, "one request queued", func() error {
		if n := metricSum(t, reg, "lab_http_queued_requests"); n != 1 {
			return fmt.Errorf("queued %v", n)
		}
		return nil
	})

	full := servetest.Call(t, "GET", base+"/fast", "")
	if full.Status != 503 || full.Header.Get(serve.Overloaded) != "queue_full" || !strings.Contains(string(full.Body), "queue of 1 is full") {
		t.Errorf("beyond the queue: %d %q %s, want 503 marked queue_full", full.Status, full.Header.Get(serve.Overloaded), full.Body)
	}
	waited := <-queued // an unrelated, fast request stalls behind the slow one, then gives up
	if waited.Status != 503 || waited.Header.Get(serve.Overloaded) != "queue_timeout" {
		t.Errorf("queued request: %d %q, want 503 queue_timeout", waited.Status, waited.Header.Get(serve.Overloaded))
	}
	close(release)
	wg.Wait()
	if a := servetest.Call(t, "GET", base+"/fast", ""); a.Status != 200 {
		t.Errorf("after the slow request: %d, want 200", a.Status)
	}
	rejected := metricSum(t, reg, "lab_http_rejected_requests_total")
	if rejected != 2 {
		t.Errorf("rejected total %v, want 2", rejected)
	}
}

func TestLimitFlagsRefuseBadSizes(t *testing.T) {
	for _, args := range [][]string{{"--max-inflight", "0"}, {"--max-inflight", "-3"}, {"--max-queue", "-1"}, {"--queue-timeout", "0s"}, {"--max-inflight", "many"}} {
		fs := flag.NewFlagSet("part", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var l serve.Listen
		l.Flags(fs, "127.0.0.1:0", "test")
		err := fs.Parse(args)
		if err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(args[0], "--")) {
			t.Errorf("%v: err %v, want a flag error naming it", args, err)
		}
	}
	fs := flag.NewFlagSet("part", flag.ContinueOnError)
	var l serve.Listen
	l.Flags(fs, "127.0.0.1:0", "test")
	if err := fs.Parse(nil); err != nil || l.Limits != serve.DefaultLimits() {
		t.Errorf("defaults: %+v %v, want %+v", l.Limits, err, serve.DefaultLimits())
	}
}

// metricSum adds up every series of the metric name in reg.
func metricSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return sum
}
