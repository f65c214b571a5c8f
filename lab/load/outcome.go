package load

import (
	"strings"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Outcome is how a request ended, as the client saw it. It is the `outcome`
// metric label and the ledger's outcome field.
type Outcome string

const (
	// Acknowledged: a 2xx answer. For a rating, the variant promised to keep it.
	Acknowledged Outcome = "acknowledged"
	// Rejected: a 4xx (or other non-2xx, non-5xx) answer; the variant refused
	// the request and must not have applied it.
	Rejected Outcome = "rejected"
	// Failed: a 5xx answer, or the request never left the client (connection
	// refused). Not acknowledged; a 5xx rating may or may not have been applied.
	Failed Outcome = "failed"
	// Ambiguous: the request was handed to a connection but no answer came
	// (timeout, reset, interrupted run). It may or may not have been applied.
	Ambiguous Outcome = "ambiguous"
)

// Outcomes lists every outcome, in label order.
var Outcomes = []Outcome{Acknowledged, Rejected, Failed, Ambiguous}

// Cause refines an outcome for people: the "errors by kind" of the progress
// view and the ledger's cause field.
type Cause string

const (
	CauseNone      Cause = ""
	CauseHTTP4xx   Cause = "4xx"
	CauseHTTP5xx   Cause = "5xx"
	CauseHTTPOther Cause = "other_status" // 1xx/3xx: not expected from the API
	CauseNotSent   Cause = "not_sent"     // connection refused or dial timeout
	CauseTimeout   Cause = "timeout"      // no answer within the request timeout
	CauseConnError Cause = "conn_error"   // reset, EOF, ... after the request was handed over
	CauseAborted   Cause = "aborted"      // the run was interrupted while it was in flight
)

// Causes lists the error causes in display order.
var Causes = []Cause{CauseHTTP4xx, CauseHTTP5xx, CauseHTTPOther, CauseNotSent, CauseTimeout, CauseConnError, CauseAborted}

// classify maps a vegeta result to an outcome and a cause.
func classify(r *vegeta.Result) (Outcome, Cause) {
	switch c := r.Code; {
	case c >= 200 && c < 300:
		return Acknowledged, CauseNone
	case c >= 400 && c < 500:
		return Rejected, CauseHTTP4xx
	case c >= 500 && c < 600:
		return Failed, CauseHTTP5xx
	case c != 0:
		return Rejected, CauseHTTPOther
	}
	if isNotSent(r.Error) {
		return Failed, CauseNotSent
	}
	switch {
	case strings.Contains(r.Error, "Client.Timeout") || strings.Contains(r.Error, "deadline exceeded"):
		return Ambiguous, CauseTimeout
	case strings.Contains(r.Error, "context canceled"):
		return Ambiguous, CauseAborted
	default:
		return Ambiguous, CauseConnError
	}
}

// expected reports whether the outcome is the answer the request should get:
// a success, or a rejection for a movie outside the catalog.
func expected(req Request, o Outcome) bool {
	if req.Unknown {
		return o == Rejected
	}
	return o == Acknowledged
}
