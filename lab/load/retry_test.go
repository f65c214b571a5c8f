package load

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/lab/load/ledger"
	"github.com/ratingslab/lab/services/lib/duration"
)

// With retries on, a rating of unknown outcome is sent again with the same
// request id until a definite answer or the bound; the ledger keeps every
// attempt and the rating's outcome follows docs/api.md: acknowledged if an
// attempt was, ambiguous if any attempt was unknown, never "failed" after an
// unknown attempt. Definite answers and reads are never retried.
func TestUnknownOutcomesAreRetriedWithTheSameRequestID(t *testing.T) {
	api := newTestAPI(t)
	var mu sync.Mutex
	sends := map[string]int{} // request id → times received
	api.behave = func(w http.ResponseWriter, r *http.Request, b ratingBody) bool {
		mu.Lock()
		sends[b.RequestID]++
		n := sends[b.RequestID]
		mu.Unlock()
		if b.MovieID >= UnknownMovieBase {
			return false
		}
		unknown := func() {
			w.WriteHeader(http.StatusGatewayTimeout)
			w.Write([]byte(`{"error":"no answer","outcome":"unknown"}`))
		}
		switch b.MovieID % 5 {
		case 1: // unknown once, then acknowledged
			if n == 1 {
				unknown()
				return true
			}
		case 2: // always unknown: retried up to the bound
			unknown()
			return true
		case 3: // unknown, then definite failures: retried to the bound, still ambiguous
			if n == 1 {
				unknown()
			} else {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return true
		case 4: // a definite failure: never retried
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	}
	s := scenarioAt(t, "smoke", 50, time.Second)
	s.Mix = Mix{Rating: 3, Movie: 1}
	s.RequestTimeout = duration.Duration(2 * time.Second)
	ledgerPath := filepath.Join(t.TempDir(), "retry.jsonl")
	policy := RetryPolicy{Max: 2, Backoff: 5 * time.Millisecond}
	m, err := NewMetrics(prometheus.NewPedanticRegistry(), []string{"v"})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := Run(context.Background(), Config{RunID: "retry", Scenario: s, LedgerPath: ledgerPath,
		Targets: []Target{{"v", api.URL}}, Retry: policy, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	l, err := ReadLedger(ledgerPath)
	if err != nil {
		t.Fatal(err)
	}
	var retried, retries uint64
	kinds := map[int64]int{}
	for _, e := range l.Entries {
		mu.Lock()
		got := sends[e.RequestID]
		mu.Unlock()
		if got != max(len(e.Attempts), 1) {
			t.Errorf("%s (movie %d): the server got it %d times, the ledger lists %d attempts", e.RequestID, e.MovieID, got, len(e.Attempts))
		}
		if e.Retries() > 0 {
			retried++
			retries += uint64(e.Retries())
		}
		want, wantAttempts := Acknowledged, 0
		switch {
		case e.UnknownMovie:
			want = Rejected
		case e.MovieID%5 == 1:
			wantAttempts = 2
		case e.MovieID%5 == 2:
			want, wantAttempts = Ambiguous, policy.Max+1
		case e.MovieID%5 == 3:
			want, wantAttempts = Ambiguous, policy.Max+1
		case e.MovieID%5 == 4:
			want = Failed
		}
		if !e.UnknownMovie {
			kinds[e.MovieID%5]++
		}
		if e.Outcome != want || len(e.Attempts) != wantAttempts {
			t.Errorf("%s (movie %d): outcome %s after %d attempts, want %s after %d", e.RequestID, e.MovieID, e.Outcome, len(e.Attempts), want, wantAttempts)
		}
		if e.MovieID%5 == 3 && !e.UnknownMovie && (e.Status != 503 || e.Cause != ledger.CauseOutcomeUnknown) {
			t.Errorf("%s: a definite failure after an unknown attempt: status %d cause %s, want the 503 with the unknown cause", e.RequestID, e.Status, e.Cause)
		}
		for i, a := range e.Attempts {
			if i > 0 && !a.SentAt.After(e.Attempts[i-1].SentAt.Add(e.Attempts[i-1].LatencyNs)) {
				t.Errorf("%s: attempt %d sent before the previous one was answered", e.RequestID, i)
			}
		}
	}
	for k := int64(1); k <= 4; k++ {
		if kinds[k] == 0 {
			t.Fatalf("no rating of kind %d in the run: the test shows nothing", k)
		}
	}
	v := sum.Variants[0]
	if v.Retried != retried || v.Retries != retries || retried == 0 {
		t.Errorf("summary: retried %d, retries %d; ledger: %d, %d", v.Retried, v.Retries, retried, retries)
	}
	if got := m.Retries("v"); got != float64(retries) {
		t.Errorf("lab_load_retries_total %v, the ledger %d", got, retries)
	}
	for _, p := range api.gets {
		if strings.Contains(p, "#") {
			t.Errorf("a read reached the server with its fragment: %s", p)
		}
	}
}

// The policy's bounds are checked before anything is sent.
func TestRetryPolicyBounds(t *testing.T) {
	for _, tc := range []struct {
		p    RetryPolicy
		want string
	}{
		{RetryPolicy{Max: -1}, "max: want 0 to 10 retries, got -1"},
		{RetryPolicy{Max: 11, Backoff: time.Second}, "max: want 0 to 10 retries, got 11"},
		{RetryPolicy{Max: 3}, "backoff: want 1ms to 10s, got 0s"},
		{RetryPolicy{Max: 3, Backoff: time.Minute}, "backoff: want 1ms to 10s, got 1m0s"},
	} {
		if err := tc.p.Validate(); err == nil || err.Error() != tc.want {
			t.Errorf("%+v: %v, want %s", tc.p, err, tc.want)
		}
	}
	if err := (RetryPolicy{}).Validate(); err != nil {
		t.Errorf("no retries: %v", err)
	}
	api := newTestAPI(t)
	_, err := Run(context.Background(), Config{RunID: "bad", Scenario: scenarioAt(t, "smoke", 10, time.Second),
		Targets: []Target{{"v", api.URL}}, Retry: RetryPolicy{Max: 99, Backoff: time.Second}})
	if err == nil || !strings.Contains(err.Error(), "retries: max") || api.arrivals.Load() != 0 {
		t.Errorf("a run with a bad policy: %v, %d requests sent", err, api.arrivals.Load())
	}
	// Backoff doubles and stays within its jitter band and the cap.
	p := RetryPolicy{Max: 10, Backoff: time.Second}
	for n, full := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 5: 10 * time.Second} {
		for range 20 {
			if w := p.wait(n); w < full/2 || w > full {
				t.Errorf("wait before retry %d: %s, want %s..%s", n, w, full/2, full)
			}
		}
	}
}
