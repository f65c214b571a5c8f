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
	"time"

	"github.com/sony/gobreaker/v2"
)

// Dependency is everything a caller needs to call one dependency safely.
// It is safe for concurrent use.
type Dependency struct {
	name     string
	settings Settings
	cb       *gobreaker.CircuitBreaker[struct{}] // nil when breakers are off
	metrics  *Metrics
	series   *depMetrics
	log      *slog.Logger
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
	d := &Dependency{name: name, settings: s, metrics: metrics, log: log.With("dependency", name)}
	if s.Enabled {
		d.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
			Name:         name,
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
			// Our caller gave up (client went away): says nothing about the dependency.
			IsExcluded:    func(err error) bool { return errors.Is(err, errCallerGone) },
			OnStateChange: d.onStateChange, // runs under gobreaker's lock: no calls back into cb
		})
	}
	d.series = metrics.register(d)
	return d, nil
}

// Name is the dependency's name, the label of its metrics.
func (d *Dependency) Name() string { return d.name }

// Settings are the dependency's settings, for /healthz and /admin/config.
func (d *Dependency) Settings() Settings { return d.settings }

// State is the breaker state: "closed", "half-open", "open", or "off".
func (d *Dependency) State() string {
	if d.cb == nil {
		return "off"
	}
	return d.cb.State().String()
}

// StateDisabled is the lab_breaker_state value of a dependency whose
// breaker is switched off (lab up --breakers=off): reports draw it as
// "disabled", never as "closed".
const StateDisabled = -1

// stateValue is the lab_breaker_state value: 0 closed, 1 half-open, 2 open,
// -1 disabled. Reading it also applies a due open→half-open transition,
// which gobreaker otherwise performs lazily on the next call.
func (d *Dependency) stateValue() float64 {
	if d.cb == nil {
		return StateDisabled
	}
	return stateGaugeValue(d.cb.State())
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

func (d *Dependency) onStateChange(_ string, from, to gobreaker.State) {
	d.metrics.transition(d.name, from.String(), to.String(), stateGaugeValue(to))
	d.log.Warn("circuit breaker state change", "from", from.String(), "to", to.String())
}

// Do runs call through the timeout, the breaker and the retries. call gets a
// context that ends at the attempt's timeout and must honour it. The error is
//   - nil on success;
//   - a client error (IsClientError) passed through untouched, not retried;
//   - an *UnavailableError when the dependency failed, timed out, or the
//     breaker rejected the call (fail fast). Its OutcomeUnknown is set when
//     any attempt's request may have reached the dependency without an
//     answer (ErrOutcomeUnknown): a later definite failure does not undo an
//     earlier "maybe".
func (d *Dependency) Do(ctx context.Context, call func(ctx context.Context) error) error {
	var last error
	unknown := false
	for attempt := 0; attempt <= d.settings.Retries; attempt++ {
		if attempt > 0 {
			if err := d.backoff(ctx, attempt-1); err != nil {
				break
			}
		}
		result, err := d.attempt(ctx, call)
		unknown = unknown || errors.Is(err, ErrOutcomeUnknown)
		switch result {
		case resultSuccess:
			return err // nil, or a client error
		case resultRejected:
			return d.unavailable(err, d.settings.OpenTimeout, unknown)
		}
		last = err
		if ctx.Err() != nil {
			break // the caller's own deadline or cancellation: no point retrying
		}
	}
	return d.unavailable(last, d.retryAfter(), unknown)
}

type result string

const (
	resultSuccess  result = "success"
	resultFailure  result = "failure"
	resultRejected result = "rejected"
)

// attempt makes one call with its own timeout, through the breaker when on.
func (d *Dependency) attempt(ctx context.Context, call func(ctx context.Context) error) (result, error) {
	start := time.Now()
	run := func() (struct{}, error) {
		actx, cancel := context.WithTimeout(ctx, d.settings.Timeout)
		defer cancel()
		err := call(actx)
		if err != nil && !IsClientError(err) {
			switch {
			case ctx.Err() != nil:
				err = fmt.Errorf("%w: %w", errCallerGone, err)
			case actx.Err() != nil && errors.Is(err, ErrOutcomeUnknown):
				err = fmt.Errorf("no answer within %s: %w: %w", d.settings.Timeout, ErrOutcomeUnknown, context.DeadlineExceeded)
			case actx.Err() != nil:
				err = fmt.Errorf("not sent within %s: %w", d.settings.Timeout, context.DeadlineExceeded)
			}
		}
		return struct{}{}, err
	}
	var err error
	if d.cb != nil {
		_, err = d.cb.Execute(run)
	} else {
		_, err = run()
	}
	res := resultSuccess
	switch {
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		res = resultRejected
	case err != nil && !IsClientError(err):
		res = resultFailure
	}
	d.series.observe(res, time.Since(start), res != resultRejected)
	return res, err
}

func (d *Dependency) backoff(ctx context.Context, n int) error {
	wait := rand.N(d.settings.backoffCap(n) + 1)
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
func (d *Dependency) retryAfter() time.Duration {
	if d.cb != nil && d.cb.State() == gobreaker.StateOpen {
		return d.settings.OpenTimeout
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

// Info is the dependency's settings and current state, for /healthz and /admin/config.
func (d *Dependency) Info() map[string]any {
	return map[string]any{"state": d.State(), "settings": d.settings}
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
