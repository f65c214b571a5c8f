package load

import (
	"context"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"time"
)

// notSentError marks a request that never left the client (connection
// refused, dial timeout, ...): the server cannot have seen it, so its outcome
// is "failed", not "ambiguous".
type notSentError struct{ err error }

func (e *notSentError) Error() string { return notSentMarker + e.err.Error() }
func (e *notSentError) Unwrap() error { return e.err }

// notSentMarker survives in vegeta's Result.Error, which is only a string.
const notSentMarker = "request not sent: "

// sentTracker wraps the transport to learn whether each request may have
// reached the server before it failed, and to let the engine abort everything
// still in flight when an interrupted run must end.
//
// "May have reached" is decided conservatively: once the request is handed to
// a connection (httptrace.GotConn) a failure is ambiguous — its bytes may be
// on the wire and the server may have applied it. Only a request that never
// got a connection (dial refused or timed out) is "not sent". The audit relies on this: it must
// never treat a write the server could have seen as certainly absent.
type sentTracker struct {
	next  http.RoundTripper
	abort context.Context
}

func (t *sentTracker) RoundTrip(req *http.Request) (*http.Response, error) {
	var started atomic.Bool
	trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { started.Store(true) }}
	// vegeta builds requests without a context; ours carries the abort signal
	// and the trace. The http.Client timeout still applies on top.
	ctx := httptrace.WithClientTrace(t.abort, trace)
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if err != nil && !started.Load() {
		return nil, &notSentError{err}
	}
	return resp, err
}

// newTransport is the HTTP transport of one variant's attacker: its own
// connection pool (variants must not share connections), no proxy from the
// environment (targets are loopback or known hosts), many idle connections
// so an open-model burst does not churn sockets.
func newTransport(abort context.Context) http.RoundTripper {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &sentTracker{
		abort: abort,
		next: &http.Transport{
			DialContext:           dialer.DialContext,
			MaxIdleConns:          0, // no global cap
			MaxIdleConnsPerHost:   10000,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: 0, // the client timeout bounds the whole exchange
			ForceAttemptHTTP2:     false,
		},
	}
}

// isNotSent reports whether a vegeta result error says the request never
// left the client. vegeta keeps only the error text, hence the marker.
func isNotSent(errText string) bool { return strings.Contains(errText, notSentMarker) }
