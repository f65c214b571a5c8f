// Package breaker wraps outbound calls to one dependency: a timeout per
// attempt, a sony/gobreaker/v2 circuit breaker (which can be switched off),
// bounded retries with jittered exponential backoff, and metrics.
package breaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
)

// Operation is what a call does to the dependency. Each has its own
// breaker, as resilient RPC clients keep them: writes failing (a dependency
// of the write path down) must not stop reads the dependency can still
// serve.
type Operation string

const (
	Read  Operation = "read"  // GET, HEAD, OPTIONS
	Write Operation = "write" // everything else
)

// Operations are every operation, in label order.
var Operations = []Operation{Read, Write}

// OperationOf is the operation of an HTTP method.
func OperationOf(method string) Operation {
	switch method {
	case "GET", "HEAD", "OPTIONS":
		return Read
	}
	return Write
}

// Dependency is everything a caller needs to call one dependency safely.
// It is safe for concurrent use; its settings can change at runtime
// (Update: the lab's control API switches breakers and retries).
type Dependency struct {
	name     string
	cur      atomic.Pointer[config]
	updateMu sync.Mutex // one Update at a time (read, change, store)
	pool     *pool      // nil: unbounded (tests); Upstream.Connect sets it
	metrics  *Metrics
	series   map[Operation]*depMetrics
	log      *slog.Logger
}

// config is one generation of settings with the breakers built for them.
type config struct {
	settings Settings
	cbs      map[Operation]*gobreaker.CircuitBreaker[struct{}] // nil when breakers are off
}

// New returns the wrapper for dependency name ("ratings-rpc"). metrics may be
// shared by every dependency of a process; nil records nothing.
func New(name string, s Settings, metrics *Metrics, log *slog.Logger) (*Dependency, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("dependency %s: %w", name, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Dependency{name: name, metrics: metrics, log: log.With("dependency", name)}
	d.cur.Store(d.build(s))
	d.series = metrics.register(d)
	return d, nil
}

// build makes fresh breakers (closed, no counts) for s.
func (d *Dependency) build(s Settings) *config {
	c := &config{settings: s}
	if !s.Enabled {
		return c
	}
	c.cbs = map[Operation]*gobreaker.CircuitBreaker[struct{}]{}
	for _, op := range Operations {
		c.cbs[op] = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
			Name:         d.name + " " + string(op),
			MaxRequests:  s.HalfOpenRequests,
			Interval:     s.Interval,
			BucketPeriod: s.Interval / 10,
			Timeout:      s.OpenTimeout,
			ReadyToTrip: func(c gobreaker.Counts) bool {
				if c.ConsecutiveFailures >= s.ConsecutiveFailures {
					return true
				}
				return s.FailureRatio > 0 && c.Requests >= s.MinRequests &&
					float64(c.TotalFailures) >= s.FailureRatio*float64(c.Requests)
			},
			// The dependency answered; the request was wrong. Not its failure.
			IsSuccessful: func(err error) bool { return err == nil || IsClientError(err) },
			// Our caller gave up (client went away), or the dependency said
			// honestly that its own dependency is down: neither is a failure
			// of this dependency.
			IsExcluded: func(err error) bool { return errors.Is(err, errCallerGone) || IsPassedOn(err) },
			OnStateChange: func(_ string, from, to gobreaker.State) { // under gobreaker's lock: no calls back into cb
				if d.cur.Load() != c {
					return // a breaker replaced by Update
				}
				d.metrics.transition(d.name, op, from.String(), to.String(), stateGaugeValue(to))
				d.log.Warn("circuit breaker state change", "operation", string(op), "from", from.String(), "to", to.String())
			},
		})
	}
	return c
}

// Update changes the settings at runtime: change edits a copy, which must
// validate. The breakers start afresh (closed, no counts), so a switch
// between runs of an experiment carries nothing over.
func (d *Dependency) Update(change func(*Settings)) (Settings, error) {
	d.updateMu.Lock()
	defer d.updateMu.Unlock()
	s := d.Settings()
	change(&s)
	if err := s.Validate(); err != nil {
		return d.Settings(), err
	}
	d.cur.Store(d.build(s))
	for _, op := range Operations {
		d.metrics.setState(d.name, op, d.stateValue(op))
	}
	d.log.Info("resilience settings changed", "breakers", s.Enabled, "retries", s.Retries)
	return s, nil
}

// Name is the dependency's name, the label of its metrics.
func (d *Dependency) Name() string { return d.name }

// Settings are the dependency's settings in force, for /healthz and /admin/config.
func (d *Dependency) Settings() Settings { return d.cur.Load().settings }

// State is op's breaker state: "closed", "half-open", "open", or "off".
func (d *Dependency) State(op Operation) string {
	c := d.cur.Load()
	if c.cbs == nil {
		return "off"
	}
	return c.cbs[op].State().String()
}

// StateDisabled is the lab_breaker_state value of a dependency whose
// breaker is switched off (lab up --breakers=off): reports draw it as
// "disabled", never as "closed".
const StateDisabled = -1

// stateValue is the lab_breaker_state value: 0 closed, 1 half-open, 2 open,
// -1 disabled. Reading it also applies a due open→half-open transition,
// which gobreaker otherwise performs lazily on the next call.
func (d *Dependency) stateValue(op Operation) float64 {
	c := d.cur.Load()
	if c.cbs == nil {
		return StateDisabled
	}
	return stateGaugeValue(c.cbs[op].State())
}

func stateGaugeValue(s gobreaker.State) float64 {
	switch s {
	case gobreaker.StateHalfOpen:
		return 1
	case gobreaker.StateOpen:
		return 2
	}
	return 0
}

// Do runs call through the connection pool, the timeout, op's breaker and
// the retries. call gets a context that ends at the attempt's timeout and
// must honour it. The error is
//   - nil on success;
//   - a client error (IsClientError) passed through untouched, not retried;
//   - a 503 the dependency passed on from its own dependency (IsPassedOn),
//     inside an *UnavailableError, not retried and not counted by the
//     breaker: retrying it here would multiply the load on the dependency
//     that is down, once per layer;
//   - an *UnavailableError when the dependency failed, timed out, or the
//     breaker rejected the call (fail fast). Its OutcomeUnknown is set when
//     any attempt's request may have reached the dependency without an
//     answer (ErrOutcomeUnknown): a later definite failure does not undo an
//     earlier "maybe".
func (d *Dependency) Do(ctx context.Context, op Operation, call func(ctx context.Context) error) error {
	c := d.cur.Load() // one generation of settings for the whole call
	var last error
	unknown := false
	for attempt := 0; attempt <= c.settings.Retries; attempt++ {
		if attempt > 0 {
			if err := backoff(ctx, c.settings, attempt-1); err != nil {
				break
			}
		}
		result, err := d.attempt(ctx, c, op, call)
		unknown = unknown || errors.Is(err, ErrOutcomeUnknown)
		switch result {
		case resultSuccess:
			return err // nil, or a client error
		case resultRejected:
			return d.unavailable(err, c.settings.OpenTimeout, unknown)
		case resultPassedOn:
			return d.unavailable(err, time.Second, unknown)
		}
		last = err
		if ctx.Err() != nil {
			break // the caller's own deadline or cancellation: no point retrying
		}
	}
	return d.unavailable(last, retryAfter(c, op), unknown)
}

type result string

const (
	resultSuccess  result = "success"
	resultFailure  result = "failure"
	resultRejected result = "rejected"
	resultPassedOn result = "passed_on" // a 503 the dependency passed on from its own dependency
)

var results = []result{resultSuccess, resultFailure, resultRejected, resultPassedOn}

// attempt makes one call with its own timeout (which includes the wait for
// a pooled connection), through op's breaker when on.
func (d *Dependency) attempt(ctx context.Context, c *config, op Operation, call func(ctx context.Context) error) (result, error) {
	start := time.Now()
	timeout := c.settings.Timeout
	run := func() (struct{}, error) {
		actx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		var err error
		if d.pool != nil {
			err = d.pool.acquire(actx)
		}
		if err == nil {
			err = call(actx)
			if d.pool != nil {
				d.pool.release()
			}
		}
		if err != nil && !IsClientError(err) {
			switch {
			case ctx.Err() != nil:
				err = fmt.Errorf("%w: %w", errCallerGone, err)
			case actx.Err() != nil && errors.Is(err, ErrOutcomeUnknown):
				err = fmt.Errorf("no answer within %s: %w: %w", timeout, ErrOutcomeUnknown, context.DeadlineExceeded)
			case actx.Err() != nil:
				err = fmt.Errorf("not sent within %s: %w: %w", timeout, err, context.DeadlineExceeded)
			}
		}
		return struct{}{}, err
	}
	var err error
	if c.cbs != nil {
		_, err = c.cbs[op].Execute(run)
	} else {
		_, err = run()
	}
	res := resultSuccess
	switch {
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		res = resultRejected
	case IsPassedOn(err):
		res = resultPassedOn
	case err != nil && !IsClientError(err):
		res = resultFailure
	}
	d.series[op].observe(res, time.Since(start), res != resultRejected)
	return res, err
}

func backoff(ctx context.Context, s Settings, n int) error {
	wait := rand.N(s.backoffCap(n) + 1)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryAfter hints when to try again after a failure: when the breaker is
// open by now, once it may probe; otherwise soon.
func retryAfter(c *config, op Operation) time.Duration {
	if c.cbs != nil && c.cbs[op].State() == gobreaker.StateOpen {
		return c.settings.OpenTimeout
	}
	return time.Second
}

func (d *Dependency) unavailable(err error, retryAfter time.Duration, unknown bool) error {
	if err == nil {
		err = errors.New("no attempt made")
	}
	return &UnavailableError{Dependency: d.name, RetryAfter: retryAfter, Err: err, OutcomeUnknown: unknown}
}

// UnavailableError says the dependency could not serve the call: it failed,
// timed out, or its breaker rejected the call without trying.
type UnavailableError struct {
	Dependency string
	RetryAfter time.Duration
	Err        error
	// OutcomeUnknown: some attempt's request reached the dependency (was
	// completely written) and no answer came, so it may have acted on it.
	// False means the dependency certainly did not act (refused, never
	// sent, answered a definite error, or the breaker rejected the call).
	OutcomeUnknown bool
}

func (e *UnavailableError) Error() string { return e.Dependency + ": " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

// Rejected says the breaker refused the call without trying (fail fast).
func (e *UnavailableError) Rejected() bool {
	return errors.Is(e.Err, gobreaker.ErrOpenState) || errors.Is(e.Err, gobreaker.ErrTooManyRequests)
}

var errCallerGone = errors.New("caller gave up")

// ClientError marks an error as the dependency's proper answer to a bad
// request (an HTTP 4xx such as 404): the call succeeded as far as the
// breaker is concerned, and retrying would not help.
func ClientError(err error) error {
	if err == nil {
		return nil
	}
	return &clientError{err}
}

type clientError struct{ err error }

func (e *clientError) Error() string { return e.err.Error() }
func (e *clientError) Unwrap() error { return e.err }

// IsClientError reports whether err was marked with ClientError.
func IsClientError(err error) bool {
	var ce *clientError
	return errors.As(err, &ce)
}

// Info is the dependency's settings, breaker state per operation and
// connection pool, for /healthz, /admin/config and `lab status`. "state" is
// the worst of the operations' states.
func (d *Dependency) Info() map[string]any {
	states := map[string]string{}
	worst, worstValue := "", float64(StateDisabled-1)
	for _, op := range Operations {
		states[string(op)] = d.State(op)
		if v := d.stateValue(op); v > worstValue {
			worst, worstValue = d.State(op), v
		}
	}
	info := map[string]any{"state": worst, "states": states, "settings": d.Settings()}
	if d.pool != nil {
		info["pool"] = map[string]any{"max_conns": d.pool.size, "max_pending": d.pool.pending, "in_use": d.pool.inUse(), "waiting": d.pool.queued()}
	}
	return info
}

// Describe maps each dependency's name to its Info: the "breakers" field of
// /healthz and the body of GET /admin/config in the parts that call out.
func Describe(deps ...*Dependency) map[string]any {
	out := make(map[string]any, len(deps))
	for _, d := range deps {
		out[d.name] = d.Info()
	}
	return out
}
