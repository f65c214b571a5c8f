package ledger

// Causes refine an outcome for people: the ledger's cause field and the
// "errors by kind" of `lab load`'s progress view.
const (
	CauseHTTP4xx        = "4xx"             // rejected: the request was invalid
	CauseHTTP5xx        = "5xx"             // failed: a definite failure (500, 502, 503)
	CauseOutcomeUnknown = "outcome_unknown" // ambiguous: the server answered 504
	CauseHTTPOther      = "other_status"    // rejected: 1xx/3xx, not expected from the API
	CauseNotSent        = "not_sent"        // failed: the request was never completely written
	CauseTimeout        = "timeout"         // ambiguous: written, no answer within the request timeout
	CauseConnError      = "conn_error"      // ambiguous: written, then the connection failed (reset, EOF)
	CauseAborted        = "aborted"         // ambiguous: written, then the interrupted run gave up on it
)

// StatusOutcomeUnknown is the status a webserver answers when it cannot
// know whether a write was applied (docs/api.md): 504 with
// {"error": ..., "outcome": "unknown"}.
const StatusOutcomeUnknown = 504

// Answer is what a client learned about one request.
type Answer struct {
	// Status is the HTTP status, 0 when no complete answer came.
	Status int
	// Written: the whole request was written to the connection, so the
	// server may have acted on it. A request never completely written
	// cannot have been (a partial body does not decode).
	Written bool
	// Aborted: the client gave up on it (an interrupted run).
	Aborted bool
	// TimedOut: the client's request timeout expired first.
	TimedOut bool
}

// Classify is the one mapping from what a client saw to an outcome
// (docs/api.md): 2xx acknowledged; 4xx (and other non-5xx statuses)
// rejected; 504 ambiguous; other 5xx failed; no answer: failed when the
// request was never completely written, ambiguous otherwise.
func Classify(a Answer) (Outcome, string) {
	switch c := a.Status; {
	case c >= 200 && c < 300:
		return Acknowledged, ""
	case c >= 400 && c < 500:
		return Rejected, CauseHTTP4xx
	case c == StatusOutcomeUnknown:
		return Ambiguous, CauseOutcomeUnknown
	case c >= 500 && c < 600:
		return Failed, CauseHTTP5xx
	case c != 0:
		return Rejected, CauseHTTPOther
	case !a.Written:
		return Failed, CauseNotSent
	case a.Aborted:
		return Ambiguous, CauseAborted
	case a.TimedOut:
		return Ambiguous, CauseTimeout
	}
	return Ambiguous, CauseConnError
}
