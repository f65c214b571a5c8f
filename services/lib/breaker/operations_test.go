package breaker_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/lib/breaker"
	"github.com/ratingslab/lab/services/lib/servetest"
)

// A 503 the dependency passes on from its own dependency says the
// dependency is fine: it is neither counted by the breaker nor retried.
func TestAPassedOn503NeitherTripsTheBreakerNorIsRetried(t *testing.T) {
	s := fastSettings()
	s.Retries = 3
	h := newHarness(t, s)
	h.backend.mode.Store("passed-on")
	for range 10 {
		err := h.call()
		if !breaker.IsPassedOn(err) {
			t.Fatalf("err %v, want a passed-on 503", err)
		}
	}
	if h.dep.State(breaker.Read) != "closed" {
		t.Errorf("state after 10 passed-on 503s = %s, want closed", h.dep.State(breaker.Read))
	}
	if n := h.backend.calls.Load(); n != 10 {
		t.Errorf("the dependency saw %d calls for 10, want no retries of a passed-on 503", n)
	}
	if got := h.counter(t, "lab_dependency_calls_total", "operation", "read", "result", "passed_on"); got != 10 {
		t.Errorf("passed_on calls = %v, want 10", got)
	}
}

// Reads and writes have their own breakers: failing writes open the write
// breaker only.
func TestWritesFailingDoNotOpenTheReadBreaker(t *testing.T) {
	h := newHarness(t, fastSettings())
	h.backend.mode.Store("fail")
	for range 5 {
		_ = h.dep.Do(context.Background(), breaker.Write, func(ctx context.Context) error {
			_, err := breaker.CallJSON(ctx, h.client, "POST", h.url, map[string]int{"x": 1}, nil)
			return err
		})
	}
	if h.dep.State(breaker.Write) != "open" || h.dep.State(breaker.Read) != "closed" {
		t.Fatalf("write %s, read %s; want write open, read closed", h.dep.State(breaker.Write), h.dep.State(breaker.Read))
	}
	h.backend.mode.Store("ok")
	if err := h.call(); err != nil {
		t.Errorf("a read with the write breaker open: %v", err)
	}
}

// Update switches breakers and retries at runtime; the breakers start afresh.
func TestUpdateSwitchesBreakersAtRuntime(t *testing.T) {
	h := newHarness(t, fastSettings())
	h.backend.mode.Store("fail")
	for range 3 {
		_ = h.call()
	}
	if h.dep.State(breaker.Read) != "open" {
		t.Fatalf("state %s, want open", h.dep.State(breaker.Read))
	}
	if _, err := h.dep.Update(func(s *breaker.Settings) { s.Enabled = false; s.Retries = 2 }); err != nil {
		t.Fatal(err)
	}
	before := h.backend.calls.Load()
	_ = h.call()
	if h.dep.State(breaker.Read) != "off" || h.backend.calls.Load()-before != 3 {
		t.Errorf("off with 2 retries: state %s, %d calls; want off and 3 calls", h.dep.State(breaker.Read), h.backend.calls.Load()-before)
	}
	if got := h.counter(t, "lab_breaker_state", "operation", "read"); got != breaker.StateDisabled {
		t.Errorf("lab_breaker_state %v, want -1", got)
	}
	if _, err := h.dep.Update(func(s *breaker.Settings) { s.Retries = breaker.MaxRetries + 1 }); err == nil || !strings.Contains(err.Error(), "--retries") {
		t.Errorf("retries above the bound: %v, want an error naming --retries", err)
	}
	if _, err := h.dep.Update(func(s *breaker.Settings) { s.Enabled = true }); err != nil || h.dep.State(breaker.Read) != "closed" {
		t.Errorf("on again: %v, state %s; want a fresh closed breaker", err, h.dep.State(breaker.Read))
	}
}

// The pool bounds calls in flight: with every connection held by slow
// calls, a fast call waits for one (and its timeout still holds).
func TestThePoolMakesFastCallsWaitBehindSlowOnes(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		_, _ = io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	reg := prometheus.NewRegistry()
	s := breaker.DefaultSettings()
	s.Enabled = false
	s.Timeout = 5 * time.Second
	u := breaker.Upstream{Name: "dep", URLFlag: "dep-url", URL: srv.URL, Settings: s, Pool: breaker.ClientOptions{MaxConnsPerHost: 2, MaxPending: 1}}
	api, dep, err := u.Connect(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); _ = api.Call(context.Background(), "GET", "/slow", nil, nil) }()
	}
	servetest.Eventually(t, 5*time.Second, "both pool slots in use", func() error {
		if n := poolInfo(dep)["in_use"]; n != 2 {
			return fmt.Errorf("in_use %v", n)
		}
		return nil
	})
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = api.Call(ctx, "GET", "/fast", nil, nil)
	if took := time.Since(began); err == nil || took < 190*time.Millisecond || !strings.Contains(err.Error(), "busy connections") {
		t.Errorf("a fast call with the pool full: %v after %v, want a failure after waiting out its 200ms deadline", err, took)
	}
	m := metricsText(t, reg)
	for _, want := range []string{`lab_dependency_pool_connections{dependency="dep"} 2`, `lab_dependency_pool_in_use_connections{dependency="dep"} 2`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	release <- struct{}{}
	release <- struct{}{}
	wg.Wait()
}

func TestPoolAndRetryFlagsRefuseBadValues(t *testing.T) {
	for _, args := range [][]string{{"--max-conns", "0"}, {"--max-conns", "-1"}, {"--max-pending", "0"}, {"--retries", "6"}, {"--retries", "-1"}} {
		fs := flag.NewFlagSet("part", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		u := breaker.Upstream{Name: "dep", URLFlag: "dep-url", Settings: breaker.DefaultSettings()}
		u.Flags(fs)
		if err := fs.Parse(args); err == nil || !strings.Contains(err.Error(), strings.TrimLeft(args[0], "-")) {
			t.Errorf("%v: %v, want a flag error naming %s", args, err, args[0])
		}
	}
}

func poolInfo(d *breaker.Dependency) map[string]any {
	p, _ := d.Info()["pool"].(map[string]any)
	return p
}

func metricsText(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			fmt.Fprintf(&b, "%s{", mf.GetName())
			for i, l := range m.GetLabel() {
				if i > 0 {
					b.WriteString(",")
				}
				fmt.Fprintf(&b, "%s=%q", l.GetName(), l.GetValue())
			}
			fmt.Fprintf(&b, "} %v\n", m.GetGauge().GetValue()+m.GetCounter().GetValue())
		}
	}
	return b.String()
}
