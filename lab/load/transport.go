package load

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"time"
)

// vegeta keeps only the text of a request's error, so the transport marks
// the errors whose meaning matters to the outcome with these prefixes.
const (
	notSentMarker  = "request not sent: "  // never completely written to a connection
	timeoutMarker  = "request timed out: " // no complete answer within the timeout
	abortedMarker  = "request aborted: "   // the interrupted run gave up on it
	markerNotFound = ""
)

type markedError struct {
	marker string
	err    error
}

func (e *markedError) Error() string { return e.marker + e.err.Error() }
func (e *markedError) Unwrap() error { return e.err }

// outcomeTransport is the RoundTripper of one variant's attacker. It does
// three things vegeta's plain client cannot:
//
//   - It learns whether a failed request may have reached the server: once
//     the whole request was written to a connection (httptrace.WroteRequest
//     without error) the server may act on it, so a failure after that is
//     ambiguous. A request never completely written (dial refused, a write
//     that failed) cannot have been acted on — a partial body does not
//     decode — and is "not sent". The audit relies on this: it must never
//     count a write the server could have seen as certainly absent.
//   - It applies the request timeout as a context deadline covering the
//     whole exchange, body included. (http.Client.Timeout would do the same
//     but, for a RoundTripper that is not *http.Transport, falls back to a
//     goroutine and timer per request.)
//   - It ties every request to the run's abort context, so an interrupted
//     run can end the requests still in flight after its grace period.
type outcomeTransport struct {
	next    http.RoundTripper
	abort   context.Context
	timeout time.Duration
}

func (t *outcomeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(t.abort, t.timeout)
	var written atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
		if i.Err == nil {
			written.Store(true)
		}
	}})
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		err = t.mark(ctx, err, !written.Load())
		cancel()
		return nil, err
	}
	resp.Body = &answerBody{ReadCloser: resp.Body, t: t, ctx: ctx, cancel: cancel}
	return resp, nil
}

func (t *outcomeTransport) mark(ctx context.Context, err error, notSent bool) error {
	switch {
	case notSent:
		return &markedError{notSentMarker, err}
	case t.abort.Err() != nil:
		return &markedError{abortedMarker, err}
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return &markedError{timeoutMarker, err}
	}
	return err
}

// answerBody keeps the request's context alive while vegeta reads the
// answer, marks a read cut short by the timeout or an abort, and releases
// the context when vegeta closes it.
type answerBody struct {
	io.ReadCloser
	t      *outcomeTransport
	ctx    context.Context
	cancel context.CancelFunc
}

func (b *answerBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = b.t.mark(b.ctx, err, false)
	}
	return n, err
}

func (b *answerBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// newTransport is the HTTP transport of one variant's attacker: its own
// connection pool (variants must not share connections), no proxy from the
// environment (targets are loopback or known hosts), many idle connections
// so an open-model burst does not churn sockets.
func newTransport(abort context.Context, timeout time.Duration) http.RoundTripper {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &outcomeTransport{
		abort:   abort,
		timeout: timeout,
		next: &http.Transport{
			DialContext:         dialer.DialContext,
			MaxIdleConnsPerHost: 10000,
			IdleConnTimeout:     90 * time.Second,
		},
	}
}

// CloseIdleConnections closes the pool's idle connections (http.Client's).
func (t *outcomeTransport) CloseIdleConnections() { closeIdle(t.next) }

func closeIdle(rt http.RoundTripper) {
	if c, ok := rt.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// errorMarker returns the marker in a vegeta result's error text, if any.
func errorMarker(errText string) string {
	for _, m := range []string{notSentMarker, abortedMarker, timeoutMarker} {
		if strings.Contains(errText, m) {
			return m
		}
	}
	return markerNotFound
}
