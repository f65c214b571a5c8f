package load

import "time"

// Answer is one request the engine has an outcome for, as it was
// classified: what an Observer sees.
type Answer struct {
	Variant string
	Seq     uint64
	Kind    Kind
	// MovieID is the rated or read movie (0 for a list).
	MovieID int64
	// Tenths is a rating's value in tenths (ratings only).
	Tenths   int64
	Outcome  Outcome
	Cause    Cause
	Expected Outcome
	SentAt   time.Time
	Latency  time.Duration
	// Retries is how many times a rating of unknown outcome was sent again
	// (RetryPolicy); Latency covers every attempt and wait.
	Retries int
}

// AsExpected reports whether the variant gave the answer a correct variant
// gives (2xx; a 4xx for a request the generator made invalid on purpose).
func (a Answer) AsExpected() bool { return a.Outcome == a.Expected }

// Observer sees every request of a run as it is sent and answered: the
// exact per-request feed behind the figures of experiments (latency
// percentiles, success ratios, view gaps per movie). Calls come from the
// engine's per-variant goroutines, concurrently across variants; an
// Observer must be safe for that and quick.
type Observer interface {
	// Sent is called when request seq is handed to the variant's client.
	Sent(variant string, seq uint64)
	// Answered is called once per request sent, when its outcome is known.
	Answered(Answer)
}
