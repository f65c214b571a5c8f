package breaker_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/ratingslab/lab/services/lib/breaker"
	"github.com/ratingslab/lab/services/lib/servetest"
)

// dependency is a real HTTP server whose behaviour the test switches.
type dependency struct {
	*httptest.Server
	mode  atomic.Value // "ok", "fail" (500), "hang" (until the client gives up), "missing" (404)
	calls atomic.Int64
}

func newDependency(t *testing.T) *dependency {
	d := &dependency{}
	d.mode.Store("ok")
	d.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.calls.Add(1)
		switch d.mode.Load().(string) {
		case "fail":
			http.Error(w, `{"error":"injected"}`, http.StatusInternalServerError)
		case "hang":
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		case "passed-on":
			w.Header().Set(breaker.PassedOnHeader, "movies-rpc")
			http.Error(w, `{"error":"movies-rpc: down"}`, http.StatusServiceUnavailable)
		case "missing":
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"id: no movie 9"}`))
		default:
			_, _ = w.Write([]byte(`{"ok":true}`))
		}
	}))
	t.Cleanup(d.Close)
	return d
}

type harness struct {
	dep     *breaker.Dependency
	reg     *prometheus.Registry
	client  *http.Client
	url     string
	backend *dependency
}

func newHarness(t *testing.T, s breaker.Settings) *harness {
	t.Helper()
	reg := prometheus.NewRegistry()
	dep, err := breaker.New("movies-rpc", s, breaker.NewMetrics(reg), nil)
	if err != nil {
		t.Fatal(err)
	}
	backend := newDependency(t)
	return &harness{dep: dep, reg: reg, client: breaker.NewHTTPClient(breaker.ClientOptions{}), url: backend.URL + "/movies/1", backend: backend}
}

func (h *harness) call() error {
	return h.dep.Do(context.Background(), breaker.Read, func(ctx context.Context) error {
		_, err := breaker.CallJSON(ctx, h.client, "GET", h.url, nil, nil)
		return err
	})
}

func (h *harness) counter(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue metric
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return 0
}

func fastSettings() breaker.Settings {
	s := breaker.DefaultSettings()
	s.Timeout = 200 * time.Millisecond
	s.ConsecutiveFailures = 3
	s.FailureRatio = 0
	s.OpenTimeout = 300 * time.Millisecond
	s.HalfOpenRequests = 2
	return s
}

func unavailable(t *testing.T, err error) *breaker.UnavailableError {
	t.Helper()
	var ue *breaker.UnavailableError
	if !errors.As(err, &ue) {
		t.Fatalf("error %v (%T), want *UnavailableError", err, err)
	}
	return ue
}

func TestAFailingDependencyOpensTheBreakerAndCallsFailFast(t *testing.T) {
	h := newHarness(t, fastSettings())
	h.backend.mode.Store("fail")

	for i := range 3 {
		if ue := unavailable(t, h.call()); ue.Rejected() {
			t.Fatalf("call %d was rejected before the breaker had seen 3 failures", i)
		}
	}
	if h.dep.State(breaker.Read) != "open" {
		t.Fatalf("state after 3 failures = %s, want open", h.dep.State(breaker.Read))
	}
	reached := h.backend.calls.Load()

	began := time.Now()
	ue := unavailable(t, h.call())
	if !ue.Rejected() || ue.RetryAfter != 300*time.Millisecond || ue.Dependency != "movies-rpc" {
		t.Errorf("open breaker answered %+v, want a rejection naming movies-rpc with retry after the open timeout", ue)
	}
	if took := time.Since(began); took > 100*time.Millisecond {
		t.Errorf("rejected call took %v; an open breaker must fail fast", took)
	}
	if h.backend.calls.Load() != reached {
		t.Error("the open breaker let a call reach the dependency")
	}

	for metric, want := range map[string]float64{
		"lab_breaker_state":                    2,
		"lab_breaker_transitions_total":        1,
		"lab_dependency_call_duration_seconds": 3,
	} {
		if got := h.counter(t, metric, "dependency", "movies-rpc"); got != want {
			t.Errorf("%s = %v, want %v", metric, got, want)
		}
	}
	if got := h.counter(t, "lab_breaker_transitions_total", "from", "closed", "to", "open"); got != 1 {
		t.Errorf("closed→open transitions = %v, want 1", got)
	}
	if got := h.counter(t, "lab_dependency_calls_total", "result", "failure"); got != 3 {
		t.Errorf("failures = %v, want 3", got)
	}
	if got := h.counter(t, "lab_dependency_calls_total", "result", "rejected"); got != 1 {
		t.Errorf("rejected = %v, want 1", got)
	}
}

func TestAHangingDependencyTimesOutAndTripsTheBreaker(t *testing.T) {
	h := newHarness(t, fastSettings())
	h.backend.mode.Store("hang")
	for range 3 {
		began := time.Now()
		err := h.call()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("hanging call: %v, want a deadline error", err)
		}
		if took := time.Since(began); took < 200*time.Millisecond || took > 2*time.Second {
			t.Errorf("hanging call took %v, want about the 200ms timeout", took)
		}
	}
	began := time.Now()
	if ue := unavailable(t, h.call()); !ue.Rejected() || time.Since(began) > 100*time.Millisecond {
		t.Errorf("after 3 timeouts: %v after %v, want an immediate rejection", ue, time.Since(began))
	}
}

func TestWithBreakersOffEveryCallWaitsTheFullTimeout(t *testing.T) {
	s := fastSettings()
	s.Enabled = false
	h := newHarness(t, s)
	h.backend.mode.Store("hang")

	for i := range 5 {
		began := time.Now()
		ue := unavailable(t, h.call())
		if ue.Rejected() {
			t.Fatalf("call %d rejected with breakers off", i)
		}
		if took := time.Since(began); took < 200*time.Millisecond {
			t.Errorf("call %d took %v; with breakers off it must wait the full 200ms timeout", i, took)
		}
	}
	if h.dep.State(breaker.Read) != "off" {
		t.Errorf("State() = %s, want off", h.dep.State(breaker.Read))
	}
	if got := h.counter(t, "lab_dependency_calls_total", "result", "failure"); got != 5 {
		t.Errorf("failures = %v, want 5 (calls are counted with breakers off)", got)
	}
	if got := h.counter(t, "lab_dependency_calls_total", "result", "rejected"); got != 0 {
		t.Errorf("rejected = %v, want 0", got)
	}
	if got := h.counter(t, "lab_breaker_state", "dependency", "movies-rpc"); got != breaker.StateDisabled {
		t.Errorf("state gauge = %v, want -1 (disabled) with breakers off, never 0 (closed)", got)
	}
}

func TestARecoveredDependencyClosesTheBreakerThroughHalfOpen(t *testing.T) {
	h := newHarness(t, fastSettings())
	h.backend.mode.Store("fail")
	for range 3 {
		_ = h.call()
	}
	if h.dep.State(breaker.Read) != "open" {
		t.Fatalf("state = %s, want open", h.dep.State(breaker.Read))
	}
	h.backend.mode.Store("ok")

	// The scrape itself must show half-open once the open timeout passed.
	servetest.Eventually(t, 5*time.Second, "the scrape to show the breaker half-open", func() error {
		if got := h.counter(t, "lab_breaker_state", "dependency", "movies-rpc"); got != 1 {
			return fmt.Errorf("lab_breaker_state %v; state %s", got, h.dep.State(breaker.Read))
		}
		return nil
	})
	for i := range 2 { // HalfOpenRequests successes close it
		if err := h.call(); err != nil {
			t.Fatalf("probe %d: %v", i, err)
		}
	}
	if h.dep.State(breaker.Read) != "closed" {
		t.Errorf("state after 2 successful probes = %s, want closed", h.dep.State(breaker.Read))
	}
	for _, tr := range [][2]string{{"closed", "open"}, {"open", "half-open"}, {"half-open", "closed"}} {
		if got := h.counter(t, "lab_breaker_transitions_total", "from", tr[0], "to", tr[1]); got != 1 {
			t.Errorf("%s→%s transitions = %v, want 1", tr[0], tr[1], got)
		}
	}
	if got := h.counter(t, "lab_breaker_state", "dependency", "movies-rpc"); got != 0 {
		t.Errorf("state gauge = %v, want 0 (closed)", got)
	}
}

func TestAFailedProbeOpensTheBreakerAgain(t *testing.T) {
	h := newHarness(t, fastSettings())
	h.backend.mode.Store("fail")
	for range 3 {
		_ = h.call()
	}
	servetest.Eventually(t, 5*time.Second, "the breaker to go half-open", func() error {
		if st := h.dep.State(breaker.Read); st != "half-open" {
			return fmt.Errorf("state %s", st)
		}
		return nil
	})
	_ = h.call()
	if h.dep.State(breaker.Read) != "open" {
		t.Errorf("state after a failed probe = %s, want open", h.dep.State(breaker.Read))
	}
}

func TestAnErrorRateTripsTheBreakerByRatio(t *testing.T) {
	s := fastSettings()
	s.ConsecutiveFailures = 100
	s.FailureRatio = 0.5
	s.MinRequests = 10
	h := newHarness(t, s)
	for i := range 10 {
		if i%2 == 1 { // the 10th call fails: the ratio is checked on failures
			h.backend.mode.Store("fail")
		} else {
			h.backend.mode.Store("ok")
		}
		_ = h.call()
	}
	if h.dep.State(breaker.Read) != "open" {
		t.Errorf("state after 5 of 10 failed = %s, want open", h.dep.State(breaker.Read))
	}
}

func TestClientErrorsAreAnswersNotFailures(t *testing.T) {
	h := newHarness(t, fastSettings())
	h.backend.mode.Store("missing")
	for range 10 {
		err := h.call()
		var se *breaker.StatusError
		if !breaker.IsClientError(err) || !errors.As(err, &se) || se.Status != 404 || se.Message != "id: no movie 9" {
			t.Fatalf("404: %v, want a client error carrying status and message", err)
		}
	}
	if h.dep.State(breaker.Read) != "closed" {
		t.Errorf("state after 10 404s = %s, want closed", h.dep.State(breaker.Read))
	}
	if got := h.counter(t, "lab_dependency_calls_total", "result", "success"); got != 10 {
		t.Errorf("successes = %v, want 10", got)
	}
	if h.backend.calls.Load() != 10 {
		t.Errorf("dependency saw %d calls; client errors must not be retried", h.backend.calls.Load())
	}
}

func TestRetriesAreBoundedAndRecoverTransientFailures(t *testing.T) {
	s := fastSettings()
	s.Retries = 2
	s.RetryBackoff = 5 * time.Millisecond
	s.ConsecutiveFailures = 10
	h := newHarness(t, s)

	var n atomic.Int64
	err := h.dep.Do(context.Background(), breaker.Read, func(ctx context.Context) error {
		if n.Add(1) < 3 {
			return errors.New("transient")
		}
		return nil
	})
	if err != nil || n.Load() != 3 {
		t.Errorf("transient failures: err %v after %d attempts, want success on attempt 3", err, n.Load())
	}

	n.Store(0)
	err = h.dep.Do(context.Background(), breaker.Read, func(ctx context.Context) error {
		n.Add(1)
		return errors.New("down")
	})
	if unavailable(t, err); n.Load() != 3 {
		t.Errorf("persistent failure: %d attempts, want 1 + 2 retries", n.Load())
	}
	if b := s.Budget(); b < 3*200*time.Millisecond || b > 3*200*time.Millisecond+20*time.Millisecond {
		t.Errorf("Budget() = %v, want 3 timeouts plus at most 15ms of backoff", b)
	}
}

func TestACallerThatGivesUpIsNotRetriedNorBlamedOnTheDependency(t *testing.T) {
	s := fastSettings()
	s.Retries = 3
	h := newHarness(t, s)
	h.backend.mode.Store("hang")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	began := time.Now()
	err := h.dep.Do(ctx, breaker.Read, func(ctx context.Context) error {
		_, err := breaker.CallJSON(ctx, h.client, "GET", h.url, nil, nil)
		return err
	})
	unavailable(t, err)
	if took := time.Since(began); took > 150*time.Millisecond {
		t.Errorf("took %v; the caller's 50ms deadline must end the call and its retries", took)
	}
	for range 5 {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = h.dep.Do(ctx, breaker.Read, func(ctx context.Context) error { return ctx.Err() })
	}
	if h.dep.State(breaker.Read) != "closed" {
		t.Errorf("state = %s; callers giving up must not open the breaker", h.dep.State(breaker.Read))
	}
}

func TestSettingsFlags(t *testing.T) {
	s := breaker.DefaultSettings()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s.Flags(fs)
	err := fs.Parse([]string{"--breakers", "off", "--timeout", "750ms", "--retries", "2",
		"--breaker-consecutive-failures", "7", "--breaker-open-timeout", "3s", "--breaker-half-open-requests", "4"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Enabled || s.Timeout != 750*time.Millisecond || s.Retries != 2 || s.ConsecutiveFailures != 7 ||
		s.OpenTimeout != 3*time.Second || s.HalfOpenRequests != 4 {
		t.Errorf("parsed %+v", s)
	}
	if err := fs.Parse([]string{"--breakers", "maybe"}); err == nil {
		t.Error("--breakers maybe accepted")
	}
	bad := breaker.DefaultSettings()
	bad.Retries = breaker.MaxRetries + 1
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "--retries") {
		t.Errorf("Validate(retries %d) = %v, want an error naming --retries", bad.Retries, err)
	}
}

func TestMetricsPassPromlint(t *testing.T) {
	h := newHarness(t, fastSettings())
	_ = h.call()
	problems, err := promlint.NewWithMetricFamilies(mustGather(t, h.reg)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	for _, mf := range mustGather(t, h.reg) {
		if mf.GetName() == "lab_dependency_calls_total" && len(mf.GetMetric()) != 8 {
			t.Errorf("lab_dependency_calls_total has %d series, want 8 (read and write × success, failure, rejected, passed_on from the start)", len(mf.GetMetric()))
		}
	}
}

func mustGather(t *testing.T, reg *prometheus.Registry) []*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// What a failed call means for a write decides the caller's answer
// (docs/api.md): only a request that reached the dependency without an
// answer is "outcome unknown"; refusals, definite errors and an open
// breaker are certain failures.
func TestAFailedCallSaysWhetherTheDependencyMayHaveActed(t *testing.T) {
	s := breaker.DefaultSettings()
	s.Timeout = 150 * time.Millisecond
	s.ConsecutiveFailures = 100
	s.FailureRatio = 0
	unknown := func(err error) (bool, bool) {
		var ue *breaker.UnavailableError
		if !errors.As(err, &ue) {
			return false, false
		}
		return ue.OutcomeUnknown, true
	}

	h := newHarness(t, s)
	h.backend.mode.Store("hang")
	if u, ok := unknown(h.call()); !ok || !u {
		t.Errorf("a request the dependency read and never answered: OutcomeUnknown %v (unavailable %v), want true", u, ok)
	}
	h.backend.mode.Store("fail")
	if u, ok := unknown(h.call()); !ok || u {
		t.Errorf("a 500 answer: OutcomeUnknown %v, want false (a definite failure)", u)
	}

	refused := newHarness(t, s)
	refused.backend.Close()
	if u, ok := unknown(refused.call()); !ok || u {
		t.Errorf("a refused connection: OutcomeUnknown %v, want false (never sent)", u)
	}

	// The dependency itself says it does not know.
	gw := newHarness(t, s)
	gw.url = serveFunc(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusGatewayTimeout)
		w.Write([]byte(`{"error":"no answer","outcome":"unknown"}`))
	})
	if u, ok := unknown(gw.call()); !ok || !u {
		t.Errorf("a 504 from the dependency: OutcomeUnknown %v, want true", u)
	}

	// With retries, an earlier "maybe" is not undone by a later definite 500.
	r := s
	r.Retries, r.RetryBackoff, r.MaxBackoff = 1, time.Millisecond, time.Millisecond
	retried := newHarness(t, r)
	var n atomic.Int64
	retried.url = serveFunc(t, func(w http.ResponseWriter, req *http.Request) {
		if n.Add(1) == 1 {
			<-req.Context().Done()
			return
		}
		http.Error(w, `{"error":"injected"}`, http.StatusInternalServerError)
	})
	if u, ok := unknown(retried.call()); !ok || !u || n.Load() != 2 {
		t.Errorf("a timeout then a 500: OutcomeUnknown %v after %d attempts, want true after 2", u, n.Load())
	}

	// An open breaker rejects without sending.
	o := s
	o.ConsecutiveFailures = 1
	open := newHarness(t, o)
	open.backend.mode.Store("fail")
	open.call()
	err := open.call()
	var ue *breaker.UnavailableError
	if !errors.As(err, &ue) || !ue.Rejected() || ue.OutcomeUnknown {
		t.Errorf("a call the open breaker rejected: %v (unknown %v), want a rejection with a certain outcome", err, ue != nil && ue.OutcomeUnknown)
	}
}

func serveFunc(t *testing.T, f http.HandlerFunc) string {
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv.URL
}
