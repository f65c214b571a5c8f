package load

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ratingslab/lab/lab/load/ledger"
)

// Bounds and defaults of RetryPolicy.
const (
	MaxRetries          = 10
	DefaultRetryBackoff = 200 * time.Millisecond
	MinRetryBackoff     = time.Millisecond
	MaxRetryBackoff     = 10 * time.Second
)

// RetryPolicy is what a careful client does with a rating whose outcome is
// unknown (docs/api.md, "Outcomes": 504, or sent and no answer): send it
// again with the same request id, which the idempotency contract makes safe
// (docs/api.md, "Idempotency"), until it learns the outcome. A 2xx or a 4xx
// ends the retries, and so do Max retries; a definite failure (503, not
// sent) of a retry does not, since the first attempt may still have been
// applied. A rating whose first answer is a definite failure, and reads,
// are never retried.
type RetryPolicy struct {
	// Max is how many times a rating may be sent again after its first
	// attempt (0: never).
	Max int
	// Backoff is the wait before the first retry; each next wait doubles,
	// capped at MaxRetryBackoff, and is jittered to between half and all of
	// it (so retried clients do not come back in step).
	Backoff time.Duration
}

// PolicyError names the field of a retry policy that is out of bounds.
type PolicyError struct{ Field, Msg string }

func (e *PolicyError) Error() string { return e.Field + ": " + e.Msg }

// Validate checks the policy's bounds.
func (p RetryPolicy) Validate() *PolicyError {
	switch {
	case p.Max < 0 || p.Max > MaxRetries:
		return &PolicyError{"max", fmt.Sprintf("want 0 to %d retries, got %d", MaxRetries, p.Max)}
	case p.Max > 0 && (p.Backoff < MinRetryBackoff || p.Backoff > MaxRetryBackoff):
		return &PolicyError{"backoff", fmt.Sprintf("want %s to %s, got %s", MinRetryBackoff, MaxRetryBackoff, p.Backoff)}
	}
	return nil
}

// wait is the jittered pause before retry n (1-based).
func (p RetryPolicy) wait(n int) time.Duration {
	d := p.Backoff
	for i := 1; i < n && d < MaxRetryBackoff; i++ {
		d *= 2
	}
	d = min(d, MaxRetryBackoff)
	return d/2 + rand.N(d/2+1)
}

// retryTransport sends a rating of unknown outcome again, with the same
// body (so the same request id), and keeps every attempt of a retried
// rating for the ledger (by the sequence number in the URL fragment).
type retryTransport struct {
	next   http.RoundTripper // the outcomeTransport: one timeout per attempt
	abort  context.Context
	policy RetryPolicy

	mu       sync.Mutex
	attempts map[uint64][]ledger.Attempt
}

// CloseIdleConnections closes the pool's idle connections (http.Client's).
func (t *retryTransport) CloseIdleConnections() { closeIdle(t.next) }

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPost || req.GetBody == nil || t.policy.Max == 0 {
		return t.next.RoundTrip(req)
	}
	var tried []ledger.Attempt
	unknown := false // some attempt's outcome was unknown
	for n := 0; ; n++ {
		start := time.Now()
		resp, err := t.next.RoundTrip(req)
		a := ledger.Answer{}
		if err != nil {
			m := errorMarker(err.Error())
			a = ledger.Answer{Written: m != notSentMarker, Aborted: m == abortedMarker, TimedOut: m == timeoutMarker}
		} else {
			a.Status = resp.StatusCode
		}
		outcome, cause := ledger.Classify(a)
		tried = append(tried, ledger.Attempt{SentAt: start, Status: a.Status, Outcome: outcome, Cause: cause, LatencyNs: time.Since(start)})
		var body io.ReadCloser
		unknown = unknown || outcome == ledger.Ambiguous
		retry := unknown && (outcome == ledger.Ambiguous || outcome == ledger.Failed) &&
			cause != ledger.CauseAborted && n < t.policy.Max && t.abort.Err() == nil
		if retry {
			if body, err = req.GetBody(); err != nil {
				retry = false
			}
		}
		if !retry {
			t.keep(req, tried)
			return resp, err
		}
		// The answer being dropped is read to the end so that its
		// connection can be reused; then wait and send the same body.
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		tm := time.NewTimer(t.policy.wait(n + 1))
		select {
		case <-tm.C:
		case <-t.abort.Done():
		case <-req.Context().Done():
		}
		tm.Stop()
		if t.abort.Err() != nil || req.Context().Err() != nil {
			// Given up while waiting: the unknown outcome stands (the
			// request was written, so "aborted" is ambiguous too).
			body.Close()
			t.keep(req, tried)
			return nil, &markedError{abortedMarker, context.Canceled}
		}
		r := req.Clone(req.Context())
		r.Body = body
		req = r
	}
}

func (t *retryTransport) keep(req *http.Request, tried []ledger.Attempt) {
	if len(tried) < 2 {
		return
	}
	seq, err := strconv.ParseUint(req.URL.Fragment, 10, 64)
	if err != nil {
		return
	}
	t.mu.Lock()
	t.attempts[seq] = tried
	t.mu.Unlock()
}

// take returns and forgets the attempts of a retried rating (nil when it
// was sent once).
func (t *retryTransport) take(seq uint64) []ledger.Attempt {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.attempts[seq]
	delete(t.attempts, seq)
	return a
}

// retriedOutcome is a retried rating's outcome: acknowledged when an
// attempt was; otherwise ambiguous as soon as one attempt was (a later
// definite failure does not undo an earlier attempt that may have been
// applied); otherwise the last attempt's.
func retriedOutcome(final ledger.Outcome, finalCause string, tried []ledger.Attempt) (ledger.Outcome, string) {
	if final == ledger.Acknowledged || len(tried) < 2 {
		return final, finalCause
	}
	for i := len(tried) - 1; i >= 0; i-- {
		if tried[i].Outcome == ledger.Ambiguous {
			if i == len(tried)-1 {
				return final, finalCause
			}
			return ledger.Ambiguous, tried[i].Cause
		}
	}
	return final, finalCause
}
