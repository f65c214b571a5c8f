package breaker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync/atomic"
	"time"
)

// ErrOutcomeUnknown marks a call whose request was completely written to the
// dependency but whose answer never came (timeout, connection lost), or
// whose dependency answered 504 itself: the dependency may have acted on
// it. A write behind such an error must be answered "outcome unknown"
// (docs/api.md), never "failed".
var ErrOutcomeUnknown = errors.New("outcome unknown")

// ClientOptions size the connection pool to one dependency.
type ClientOptions struct {
	// MaxConnsPerHost caps connections to the dependency, and so the calls
	// in flight to it (0: DefaultMaxConnsPerHost). Without a cap, a slow
	// dependency under load makes the caller open a connection per waiting
	// request until file descriptors run out; with it, extra calls queue
	// for a connection inside their own attempt timeout.
	MaxConnsPerHost int
	// MaxPending caps the calls waiting for a connection; more fail at once
	// without being sent (0: DefaultMaxPending).
	MaxPending int
}

// Connection pool defaults, modelled on common client defaults:
// DefaultMaxConnsPerHost is Hystrix's default thread pool per dependency
// (coreSize 10: at most 10 calls in flight to one dependency);
// DefaultMaxPending is Envoy's cluster default max_pending_requests. A
// healthy loopback call takes milliseconds, so 10 carries thousands of
// calls per second; a dependency slowed to its timeout fills it.
const (
	DefaultMaxConnsPerHost = 10
	DefaultMaxPending      = 1024
)

// withDefaults fills zero fields with the defaults.
func (o ClientOptions) withDefaults() ClientOptions {
	if o.MaxConnsPerHost <= 0 {
		o.MaxConnsPerHost = DefaultMaxConnsPerHost
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	return o
}

// PassedOnHeader marks a 503 that a service answers because its own
// dependency is unavailable (ratings-rpc when movies-rpc is down): the
// service itself is fine, so its callers' breakers do not count it.
// Its value names the dependency that is down.
const PassedOnHeader = "Lab-Passed-On"

// errPassedOn marks a *StatusError carrying PassedOnHeader.
var errPassedOn = errors.New("passed on from the dependency's own dependency")

// IsPassedOn reports whether err is a 503 the dependency passed on.
func IsPassedOn(err error) bool { return errors.Is(err, errPassedOn) }

// NewHTTPClient returns the client for calls to one dependency. Its settings,
// and why:
//   - No Client.Timeout: each attempt's context deadline (Settings.Timeout)
//     bounds the whole exchange; a second, unrelated deadline would only blur
//     which limit fired.
//   - Dial timeout 1s: on loopback a connect either succeeds at once or the
//     peer is gone or blackholed; the attempt deadline cuts it shorter still.
//   - MaxIdleConnsPerHost = MaxConnsPerHost: the default of 2 closes almost
//     every connection after use under load, so each request pays a connect
//     and the host fills with TIME_WAIT sockets.
//   - IdleConnTimeout 60s: shorter than the servers' IdleTimeout (90s), so the
//     client retires an idle connection before the server closes it under it.
//   - No proxy from the environment: the lab's edges are its own fault
//     proxies, handed over as addresses; HTTP_PROXY must not add another hop.
//   - Compression off: small JSON on loopback; gzip only costs CPU.
func NewHTTPClient(opts ClientOptions) *http.Client {
	maxConns := opts.withDefaults().MaxConnsPerHost
	return &http.Client{Transport: &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          maxConns,
		MaxIdleConnsPerHost:   maxConns,
		MaxConnsPerHost:       maxConns,
		IdleConnTimeout:       60 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
	}}
}

// StatusError is a non-2xx answer of a dependency.
type StatusError struct {
	Method, URL string
	Status      int
	Message     string        // the dependency's {"error": ...}, or the start of its body
	RetryAfter  time.Duration // the dependency's retry_after (body, seconds) or Retry-After header
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.URL, e.Status, e.Message)
}

// MaxAnswerBytes bounds how much of a dependency's answer is read.
const MaxAnswerBytes = 4 << 20

// CallJSON makes one HTTP call with a JSON body (nil: none) and decodes a 2xx
// JSON answer into out (nil: discard). It returns the status code, and:
// for 4xx a ClientError wrapping a *StatusError (the dependency answered; the
// request was wrong), for 5xx a plain *StatusError (a failure the breaker
// counts). An error after the whole request was written without an answer
// (and a 504) also matches ErrOutcomeUnknown. Use it inside Dependency.Do.
func CallJSON(ctx context.Context, c *http.Client, method, url string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, ClientError(fmt.Errorf("encoding request to %s: %w", url, err))
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return 0, ClientError(err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	// Whether the whole request left decides what a failure means: one
	// never completely written cannot have been acted on (a partial body
	// does not decode); after that, no answer means "maybe".
	var written atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
		if i.Err == nil {
			written.Store(true)
		}
	}}))
	res, err := c.Do(req)
	if err != nil {
		if written.Load() {
			return 0, fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
		}
		return 0, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, MaxAnswerBytes))
	if err != nil {
		err = fmt.Errorf("%s %s: reading answer: %w", method, url, err)
		if res.StatusCode >= 200 && res.StatusCode < 300 {
			err = fmt.Errorf("%w: %w", ErrOutcomeUnknown, err) // it answered yes, but we could not read on
		}
		return res.StatusCode, err
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		se := &StatusError{Method: method, URL: url, Status: res.StatusCode}
		se.Message, se.RetryAfter = errorAnswer(data)
		if secs, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && se.RetryAfter == 0 {
			se.RetryAfter = time.Duration(secs) * time.Second
		}
		if res.StatusCode >= 400 && res.StatusCode < 500 && res.StatusCode != http.StatusTooManyRequests {
			return res.StatusCode, ClientError(se)
		}
		if res.StatusCode == http.StatusGatewayTimeout {
			return res.StatusCode, fmt.Errorf("%w: %w", ErrOutcomeUnknown, se)
		}
		if res.StatusCode == http.StatusServiceUnavailable && res.Header.Get(PassedOnHeader) != "" {
			return res.StatusCode, fmt.Errorf("%w (%s): %w", errPassedOn, res.Header.Get(PassedOnHeader), se)
		}
		return res.StatusCode, se
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return res.StatusCode, fmt.Errorf("%s %s: decoding answer: %w", method, url, err)
		}
	}
	return res.StatusCode, nil
}

// errorAnswer reads the lab's error shape {"error": ..., "retry_after": seconds}.
func errorAnswer(data []byte) (string, time.Duration) {
	var e struct {
		Error      string  `json:"error"`
		RetryAfter float64 `json:"retry_after"`
	}
	if json.Unmarshal(data, &e) == nil && e.Error != "" {
		var d time.Duration
		if e.RetryAfter > 0 && e.RetryAfter < 3600 {
			d = time.Duration(e.RetryAfter * float64(time.Second))
		}
		return e.Error, d
	}
	const max = 200
	if len(data) > max {
		data = data[:max]
	}
	return string(bytes.TrimSpace(data)), 0
}
