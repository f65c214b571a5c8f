package load

import (
	"github.com/ratingslab/lab/lab/load/ledger"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Outcome is how a request ended, as the client saw it: the `outcome` metric
// label and the ledger's outcome field. docs/api.md defines them; package
// ledger classifies.
type Outcome = ledger.Outcome

const (
	Acknowledged = ledger.Acknowledged // 2xx
	Rejected     = ledger.Rejected     // 4xx (or another non-2xx, non-5xx): a definite no
	Failed       = ledger.Failed       // 5xx but 504, or never completely written: a definite failure
	Ambiguous    = ledger.Ambiguous    // 504, or written and no answer: unknown
)

// Outcomes lists every outcome, in label order.
var Outcomes = ledger.Outcomes

// Cause refines an outcome for people: the "errors by kind" of the progress
// view and the ledger's cause field.
type Cause string

const (
	CauseNone           Cause = ""
	CauseHTTP4xx        Cause = ledger.CauseHTTP4xx
	CauseHTTP5xx        Cause = ledger.CauseHTTP5xx
	CauseOutcomeUnknown Cause = ledger.CauseOutcomeUnknown
	CauseHTTPOther      Cause = ledger.CauseHTTPOther
	CauseNotSent        Cause = ledger.CauseNotSent
	CauseTimeout        Cause = ledger.CauseTimeout
	CauseConnError      Cause = ledger.CauseConnError
	CauseAborted        Cause = ledger.CauseAborted
)

// Causes lists the error causes in display order.
var Causes = []Cause{CauseHTTP4xx, CauseHTTP5xx, CauseOutcomeUnknown, CauseHTTPOther, CauseNotSent, CauseTimeout, CauseConnError, CauseAborted}

// classify maps a vegeta result to an outcome and a cause.
func classify(r *vegeta.Result) (Outcome, Cause) {
	m := errorMarker(r.Error)
	o, c := ledger.Classify(ledger.Answer{
		Status:   int(r.Code),
		Written:  m != notSentMarker,
		Aborted:  m == abortedMarker,
		TimedOut: m == timeoutMarker,
	})
	return o, Cause(c)
}

// expectedOf is the answer a correct variant gives: acknowledged, or
// rejected for a movie outside the catalog (the generator's invalid
// requests on purpose).
func expectedOf(req Request) Outcome {
	if req.Unknown {
		return Rejected
	}
	return Acknowledged
}
