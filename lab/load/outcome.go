package load

import (
	"github.com/ratingslab/lab/lab/load/ledger"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Outcome is how a request ended, as the client saw it: the `outcome` metric
// label and the ledger's outcome field. See package ledger for the meanings.
type Outcome = ledger.Outcome

const (
	Acknowledged = ledger.Acknowledged // 2xx
	Rejected     = ledger.Rejected     // 4xx (or another non-2xx, non-5xx)
	Failed       = ledger.Failed       // 5xx, or never sent
	Ambiguous    = ledger.Ambiguous    // handed over, no answer
)

// Outcomes lists every outcome, in label order.
var Outcomes = ledger.Outcomes

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
	switch errorMarker(r.Error) {
	case notSentMarker:
		return Failed, CauseNotSent
	case abortedMarker:
		return Ambiguous, CauseAborted
	case timeoutMarker:
		return Ambiguous, CauseTimeout
	}
	return Ambiguous, CauseConnError
}

// expected reports whether the outcome is the answer the request should get:
// a success, or a rejection for a movie outside the catalog.
func expected(req Request, o Outcome) bool {
	if req.Unknown {
		return o == Rejected
	}
	return o == Acknowledged
}
