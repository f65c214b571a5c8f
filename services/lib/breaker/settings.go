package breaker

import (
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Settings govern the calls to one dependency. The zero value is not useful;
// start from DefaultSettings or register flags with Settings.Flags.
type Settings struct {
	// Enabled switches the circuit breaker. Off, calls still time out and are
	// counted, but nothing stops a caller from waiting on a dead dependency
	// (the naked cascade). The state gauge then reads -1 (disabled).
	Enabled bool
	// Timeout bounds one attempt, connect to last byte of the answer.
	Timeout time.Duration
	// Retries is how many more attempts follow a failed one (0..MaxRetries).
	// Only failures are retried: not client errors (4xx), not breaker rejections.
	Retries int
	// RetryBackoff is the base of the exponential backoff between attempts;
	// each wait is drawn uniformly from [0, min(MaxBackoff, RetryBackoff*2^n)]
	// ("full jitter"), so retries of many callers do not arrive in lockstep.
	RetryBackoff time.Duration
	MaxBackoff   time.Duration

	// ConsecutiveFailures trips the breaker after this many failures in a row.
	ConsecutiveFailures uint32
	// FailureRatio trips the breaker when, among at least MinRequests calls in
	// the current Interval, this fraction failed (0 disables the ratio rule).
	// A partial failure (an error rate) rarely gives long runs of failures.
	FailureRatio float64
	MinRequests  uint32
	// Interval is the rolling window (10 buckets) of counts in the closed state.
	Interval time.Duration
	// OpenTimeout is how long the breaker stays open before letting probes through.
	OpenTimeout time.Duration
	// HalfOpenRequests is how many probes may run while half-open; that many
	// successes in a row close the breaker, one failure opens it again.
	HalfOpenRequests uint32
}

// MaxRetries bounds Settings.Retries: retries multiply load on a struggling dependency.
const MaxRetries = 5

// DefaultSettings are tuned for the lab's loopback calls: healthy calls take
// about a millisecond, so 500ms means "something is wrong".
func DefaultSettings() Settings {
	return Settings{
		Enabled:             true,
		Timeout:             500 * time.Millisecond,
		Retries:             0,
		RetryBackoff:        50 * time.Millisecond,
		MaxBackoff:          500 * time.Millisecond,
		ConsecutiveFailures: 5,
		FailureRatio:        0.5,
		MinRequests:         20,
		Interval:            10 * time.Second,
		OpenTimeout:         5 * time.Second,
		HalfOpenRequests:    3,
	}
}

// Validate names the first bad setting by its flag.
func (s Settings) Validate() error {
	switch {
	case s.Timeout <= 0:
		return fmt.Errorf("--timeout must be > 0, got %s", s.Timeout)
	case s.Retries < 0 || s.Retries > MaxRetries:
		return fmt.Errorf("--retries must be 0..%d, got %d", MaxRetries, s.Retries)
	case s.RetryBackoff < 0 || s.MaxBackoff < 0:
		return fmt.Errorf("--retry-backoff and --retry-max-backoff must be >= 0")
	case s.ConsecutiveFailures == 0:
		return fmt.Errorf("--breaker-consecutive-failures must be >= 1")
	case s.FailureRatio < 0 || s.FailureRatio > 1:
		return fmt.Errorf("--breaker-failure-ratio must be 0..1, got %v", s.FailureRatio)
	case s.Interval <= 0:
		return fmt.Errorf("--breaker-interval must be > 0, got %s", s.Interval)
	case s.OpenTimeout <= 0:
		return fmt.Errorf("--breaker-open-timeout must be > 0, got %s", s.OpenTimeout)
	case s.HalfOpenRequests == 0:
		return fmt.Errorf("--breaker-half-open-requests must be >= 1")
	}
	return nil
}

// Budget is the longest a call can take with these settings: every attempt
// timing out plus the longest backoffs. Callers size their own timeouts above it.
func (s Settings) Budget() time.Duration {
	total := time.Duration(s.Retries+1) * s.Timeout
	for n := range s.Retries {
		total += s.backoffCap(n)
	}
	return total
}

func (s Settings) backoffCap(attempt int) time.Duration {
	d := s.RetryBackoff << min(attempt, 20)
	if d > s.MaxBackoff || d <= 0 {
		d = s.MaxBackoff
	}
	return d
}

// Flags registers the settings as command-line flags, with s's values as defaults.
func (s *Settings) Flags(fs *flag.FlagSet) {
	fs.Var(onOff{&s.Enabled}, "breakers", "circuit breakers on|off; off shows the naked cascade (default on)")
	fs.DurationVar(&s.Timeout, "timeout", s.Timeout, "timeout of one attempt of an outbound call")
	fs.Func("retries", fmt.Sprintf("retries after a failed attempt, 0..%d, with full-jitter exponential backoff (default %d)", MaxRetries, s.Retries), func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > MaxRetries {
			return fmt.Errorf("want an integer from 0 to %d, got %q", MaxRetries, v)
		}
		s.Retries = n
		return nil
	})
	fs.DurationVar(&s.RetryBackoff, "retry-backoff", s.RetryBackoff, "base of the exponential backoff between retries (full jitter)")
	fs.DurationVar(&s.MaxBackoff, "retry-max-backoff", s.MaxBackoff, "cap of one backoff wait")
	fs.Func("breaker-consecutive-failures", fmt.Sprintf("consecutive failures that open the breaker (default %d)", s.ConsecutiveFailures), uintSetter(&s.ConsecutiveFailures))
	fs.Float64Var(&s.FailureRatio, "breaker-failure-ratio", s.FailureRatio, "failure ratio in the interval that opens the breaker (0 disables)")
	fs.Func("breaker-min-requests", fmt.Sprintf("calls in the interval before the failure ratio counts (default %d)", s.MinRequests), uintSetter(&s.MinRequests))
	fs.DurationVar(&s.Interval, "breaker-interval", s.Interval, "rolling window of the closed-state counts")
	fs.DurationVar(&s.OpenTimeout, "breaker-open-timeout", s.OpenTimeout, "time open before probing (half-open)")
	fs.Func("breaker-half-open-requests", fmt.Sprintf("probes while half-open; that many successes close it (default %d)", s.HalfOpenRequests), uintSetter(&s.HalfOpenRequests))
}

type onOff struct{ b *bool }

func (o onOff) String() string {
	if o.b != nil && !*o.b {
		return "off"
	}
	return "on"
}

func (o onOff) Set(v string) error {
	switch strings.ToLower(v) {
	case "on", "true", "1":
		*o.b = true
	case "off", "false", "0":
		*o.b = false
	default:
		return fmt.Errorf("want on or off, got %q", v)
	}
	return nil
}

func atLeast(dst *int, lo int) func(string) error {
	return func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo {
			return fmt.Errorf("want an integer >= %d, got %q", lo, v)
		}
		*dst = n
		return nil
	}
}

func uintSetter(dst *uint32) func(string) error {
	return func(v string) error {
		var n uint32
		if _, err := fmt.Sscan(v, &n); err != nil {
			return fmt.Errorf("want a non-negative integer, got %q", v)
		}
		*dst = n
		return nil
	}
}

// MarshalJSON shows durations as text ("500ms"), for /healthz and /admin/config.
func (s Settings) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{
		"enabled":              s.Enabled,
		"timeout":              s.Timeout.String(),
		"retries":              s.Retries,
		"retry_backoff":        s.RetryBackoff.String(),
		"retry_max_backoff":    s.MaxBackoff.String(),
		"consecutive_failures": s.ConsecutiveFailures,
		"failure_ratio":        s.FailureRatio,
		"min_requests":         s.MinRequests,
		"interval":             s.Interval.String(),
		"open_timeout":         s.OpenTimeout.String(),
		"half_open_requests":   s.HalfOpenRequests,
		"budget":               s.Budget().String(),
	})
}
