package audit

import "time"

// Sources of an observed state.
const (
	SourceAPI   = "api"   // the variant's public API, GET /api/movies
	SourceStore = "store" // the variant's own store (ratings-rpc's SQLite, ratings-stream's state)
)

// MovieState is one movie's aggregate as a variant holds it.
type MovieState struct {
	MovieID   int64 `json:"movie_id"`
	Count     int64 `json:"count"`
	SumTenths int64 `json:"sum_tenths"`
}

// Snapshot is every movie's aggregate as one source of one variant showed it
// at one moment. Movies are ordered by id; movies without ratings may be
// absent (absent reads as count 0, sum 0).
type Snapshot struct {
	Variant string       `json:"variant"`
	Source  string       `json:"source"`
	At      time.Time    `json:"at"`
	Movies  []MovieState `json:"movies"`
	// Error says why the source could not be read; Movies is then empty.
	Error string `json:"error,omitempty"`
}

// Result is the audit of one variant as seen through one source.
type Result struct {
	Variant string `json:"variant"`
	Source  string `json:"source"`
	// Checked is false when the source could not be read (Error says why).
	Checked bool   `json:"checked"`
	Error   string `json:"error,omitempty"`

	// Ledger tallies for this variant.
	Acknowledged int64 `json:"acknowledged"`
	Rejected     int64 `json:"rejected"`
	Failed       int64 `json:"failed"`
	Ambiguous    int64 `json:"ambiguous"`

	// UnexpectedRejections counts valid ratings the variant answered with a
	// 4xx (a failure of the variant, docs/api.md); UnexpectedIDs names the
	// first 20.
	UnexpectedRejections int64    `json:"unexpected_rejections"`
	UnexpectedIDs        []string `json:"unexpected_ids,omitempty"`

	// Findings, summed over movies. Each is the smallest number of such
	// events that explains the observed counts (see docs/report.md).
	Lost       int64 `json:"lost"`
	Duplicates int64 `json:"duplicates"`
	// Phantoms: ratings applied although the answer was a definite no
	// (4xx, 503, 500, never sent) — a bug.
	Phantoms int64 `json:"phantoms"`
	// AmbiguousApplied and AmbiguousNotApplied split the ambiguous ratings
	// (504, no answer): both are correct outcomes.
	AmbiguousApplied    int64 `json:"ambiguous_applied"`
	AmbiguousNotApplied int64 `json:"ambiguous_not_applied"`
	// SumMismatches counts movies whose count is explicable but whose sum
	// is not (a rating applied with another value, or a loss hidden by an
	// extra write).
	SumMismatches int64 `json:"sum_mismatches"`

	// Retried counts the ratings the load generator sent more than once
	// with the same request id (their outcome was unknown; lab load
	// --retries), Retries the extra sends. RetriedDoubled is the part of
	// Duplicates found on movies that received a retried rating: the
	// ratings a retry may have counted twice (0 when the idempotency
	// contract held).
	Retried        int64 `json:"retried,omitempty"`
	Retries        int64 `json:"retries,omitempty"`
	RetriedDoubled int64 `json:"retried_doubled,omitempty"`

	// Requests is the audit by request id, when the source keeps an
	// idempotency record (ratings-rpc's store); nil otherwise.
	Requests *RequestCheck `json:"requests,omitempty"`

	// Notes qualify the result (a missing baseline, ...).
	Notes []string `json:"notes,omitempty"`

	// Movies lists every movie with a violation, by id.
	Movies []MovieFinding `json:"movies,omitempty"`
	// OK: checked, and no loss, duplicate, phantom, sum mismatch or
	// unexpected rejection.
	OK bool `json:"ok"`
}

// MovieFinding is one movie whose state the ledger cannot explain.
type MovieFinding struct {
	MovieID int64 `json:"movie_id"`
	// Count range the ledger allows, and the count observed.
	MinCount int64 `json:"min_count"`
	MaxCount int64 `json:"max_count"`
	Count    int64 `json:"count"`
	// Sum range (tenths) allowed for the observed count, and the sum observed.
	MinSumTenths int64 `json:"min_sum_tenths"`
	MaxSumTenths int64 `json:"max_sum_tenths"`
	SumTenths    int64 `json:"sum_tenths"`

	Lost        int64 `json:"lost,omitempty"`
	Duplicates  int64 `json:"duplicates,omitempty"`
	Phantoms    int64 `json:"phantoms,omitempty"`
	SumMismatch bool  `json:"sum_mismatch,omitempty"`
	// Explanation is one sentence for people.
	Explanation string `json:"explanation"`
}
