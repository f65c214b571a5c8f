package audit

import (
	"fmt"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/load/ledger"
)

// sent builds ledger entries for variant "rpc": one per rating, all to the
// given movie with the given outcome.
type sent struct {
	movie   int64
	outcome ledger.Outcome
	cause   string
	tenths  []int64
}

func entries(variant string, ss ...sent) []ledger.Entry {
	var out []ledger.Entry
	n := 0
	for _, s := range ss {
		for _, t := range s.tenths {
			n++
			out = append(out, ledger.Entry{Type: ledger.TypePost, RequestID: fmt.Sprintf("r-%d", n), Variant: variant,
				MovieID: s.movie, RatingTenths: t, Rating: float64(t) / 10, Outcome: s.outcome, Cause: s.cause})
		}
	}
	return out
}

func snap(source string, ms ...MovieState) Snapshot {
	return Snapshot{Variant: "rpc", Source: source, Movies: ms}
}

func TestCheckExplainsEachMovieWithTheFewestViolations(t *testing.T) {
	// Movie 1 had 2 ratings (sum 15.0) before the run.
	baseline := snap(SourceAPI, MovieState{MovieID: 1, Count: 2, SumTenths: 150})
	ledgerEntries := entries("rpc",
		sent{movie: 1, outcome: ledger.Acknowledged, tenths: []int64{80, 60}},
		sent{movie: 1, outcome: ledger.Ambiguous, cause: "timeout", tenths: []int64{30, 100}},
		sent{movie: 1, outcome: ledger.Failed, cause: "5xx", tenths: []int64{50}},
		sent{movie: 1, outcome: ledger.Failed, cause: "not_sent", tenths: []int64{90}},
		sent{movie: 1, outcome: ledger.Rejected, cause: "4xx", tenths: []int64{20}},
	)
	// For movie 1: count allowed 4..6; acknowledged sum 14.0 on top of 15.0.
	tests := []struct {
		name     string
		observed MovieState
		want     MovieFinding // zero MovieID: no finding expected
		applied  int64
	}{
		{name: "exactly the acknowledged ones", observed: MovieState{MovieID: 1, Count: 4, SumTenths: 290}},
		{name: "one ambiguous applied (the 3.0)", observed: MovieState{MovieID: 1, Count: 5, SumTenths: 320}, applied: 1},
		{name: "both ambiguous applied", observed: MovieState{MovieID: 1, Count: 6, SumTenths: 420}, applied: 2},
		{
			name:     "one acknowledged lost (the 6.0)",
			observed: MovieState{MovieID: 1, Count: 3, SumTenths: 230},
			want:     MovieFinding{MovieID: 1, MinCount: 4, MaxCount: 6, Count: 3, SumTenths: 230, Lost: 1, MinSumTenths: 210, MaxSumTenths: 230},
		},
		{
			// Count 4 fits, but only if one acknowledged (8.0) is lost and
			// the ambiguous 10.0 applied: the sum 31.0 says so.
			name:     "a loss hidden by an ambiguous write",
			observed: MovieState{MovieID: 1, Count: 4, SumTenths: 310},
			want:     MovieFinding{MovieID: 1, MinCount: 4, MaxCount: 6, Count: 4, SumTenths: 310, Lost: 1, MinSumTenths: 240, MaxSumTenths: 330},
			applied:  1,
		},
		{
			name:     "the 5xx rating applied: a phantom",
			observed: MovieState{MovieID: 1, Count: 7, SumTenths: 470},
			want:     MovieFinding{MovieID: 1, MinCount: 4, MaxCount: 6, Count: 7, SumTenths: 470, Phantoms: 1, MinSumTenths: 440, MaxSumTenths: 470},
			applied:  2,
		},
		{
			name:     "one applied twice beyond every candidate",
			observed: MovieState{MovieID: 1, Count: 9, SumTenths: 570},
			want:     MovieFinding{MovieID: 1, MinCount: 4, MaxCount: 6, Count: 9, SumTenths: 570, Phantoms: 2, Duplicates: 1, MinSumTenths: 510, MaxSumTenths: 590},
			applied:  2,
		},
		{
			name:     "right count, wrong sum",
			observed: MovieState{MovieID: 1, Count: 4, SumTenths: 291},
			want: MovieFinding{MovieID: 1, MinCount: 4, MaxCount: 6, Count: 4, SumTenths: 291, SumMismatch: true,
				MinSumTenths: 290, MaxSumTenths: 290},
		},
		{
			name:     "ratings from before the run gone",
			observed: MovieState{MovieID: 1, Count: 1, SumTenths: 70},
			want:     MovieFinding{MovieID: 1, MinCount: 4, MaxCount: 6, Count: 1, SumTenths: 70, Lost: 3, MinSumTenths: 290, MaxSumTenths: 420},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Check("rpc", ledgerEntries, baseline, snap(SourceAPI, tc.observed))
			if !r.Checked {
				t.Fatalf("not checked: %s", r.Error)
			}
			if r.Acknowledged != 2 || r.Ambiguous != 2 || r.Failed != 2 || r.Rejected != 1 {
				t.Errorf("tallies = ack %d amb %d failed %d rejected %d, want 2 2 2 1", r.Acknowledged, r.Ambiguous, r.Failed, r.Rejected)
			}
			if r.AmbiguousApplied != tc.applied {
				t.Errorf("ambiguous applied = %d, want %d", r.AmbiguousApplied, tc.applied)
			}
			if tc.want.MovieID == 0 {
				if len(r.Movies) != 0 || !r.OK {
					t.Fatalf("want no finding, got ok=%v %+v", r.OK, r.Movies)
				}
				return
			}
			if len(r.Movies) != 1 {
				t.Fatalf("want one finding, got %+v", r.Movies)
			}
			got := r.Movies[0]
			if got.Explanation == "" {
				t.Error("finding has no explanation")
			}
			got.Explanation = ""
			if got != tc.want {
				t.Errorf("finding\n got %+v\nwant %+v", got, tc.want)
			}
			if r.OK {
				t.Error("result OK despite a finding")
			}
			if r.Lost != tc.want.Lost || r.Duplicates != tc.want.Duplicates || r.Phantoms != tc.want.Phantoms {
				t.Errorf("totals lost %d dup %d phantom %d, want %d %d %d", r.Lost, r.Duplicates, r.Phantoms, tc.want.Lost, tc.want.Duplicates, tc.want.Phantoms)
			}
		})
	}
}

func TestCheckLossWithAmbiguousAppliedFindsTheSmallestLoss(t *testing.T) {
	// Acknowledged 2.0 and 9.0, ambiguous 5.0. Observed: one rating of 5.0.
	// Count alone says "one lost"; the sum says "both acknowledged lost and
	// the ambiguous one applied".
	e := entries("rpc",
		sent{movie: 7, outcome: ledger.Acknowledged, tenths: []int64{20, 90}},
		sent{movie: 7, outcome: ledger.Ambiguous, tenths: []int64{50}},
	)
	r := Check("rpc", e, snap(SourceAPI), snap(SourceAPI, MovieState{MovieID: 7, Count: 1, SumTenths: 50}))
	if len(r.Movies) != 1 || r.Movies[0].Lost != 2 || r.Movies[0].SumMismatch {
		t.Fatalf("want 2 lost without sum mismatch, got %+v", r.Movies)
	}
	if r.AmbiguousApplied != 1 {
		t.Errorf("ambiguous applied = %d, want 1", r.AmbiguousApplied)
	}
}

func TestCheckCountsUnexpectedMoviesAsDuplicatesAndIgnoresOtherVariants(t *testing.T) {
	e := append(entries("stream", sent{movie: 3, outcome: ledger.Acknowledged, tenths: []int64{70}}),
		entries("rpc", sent{movie: 3, outcome: ledger.Acknowledged, tenths: []int64{70}})...)
	// Movie 9 was never rated by the ledger, nor in the baseline.
	obs := snap(SourceStore, MovieState{MovieID: 3, Count: 1, SumTenths: 70}, MovieState{MovieID: 9, Count: 1, SumTenths: 40})
	r := Check("rpc", e, snap(SourceStore), obs)
	if r.Acknowledged != 1 {
		t.Errorf("acknowledged = %d, want 1 (stream's entries are not rpc's)", r.Acknowledged)
	}
	if r.Duplicates != 1 || len(r.Movies) != 1 || r.Movies[0].MovieID != 9 {
		t.Fatalf("want one duplicate on movie 9, got dup=%d %+v", r.Duplicates, r.Movies)
	}
	if r.Movies[0].MinSumTenths != 10 || r.Movies[0].MaxSumTenths != 100 {
		t.Errorf("a rating of unknown value may be 1..10: got sum range %d..%d", r.Movies[0].MinSumTenths, r.Movies[0].MaxSumTenths)
	}
}

func TestCheckReportsAnUnreadableSourceAsUnchecked(t *testing.T) {
	obs := Snapshot{Variant: "rpc", Source: SourceAPI, Error: "GET http://127.0.0.1:1/api/movies: connection refused"}
	r := Check("rpc", entries("rpc", sent{movie: 1, outcome: ledger.Acknowledged, tenths: []int64{50}}), snap(SourceAPI), obs)
	if r.Checked || r.OK || r.Error == "" {
		t.Fatalf("want unchecked with the error, got %+v", r)
	}
	if r.Acknowledged != 1 {
		t.Errorf("the ledger tallies are still reported: acknowledged = %d", r.Acknowledged)
	}
}

func TestCheckRequestsNamesLostPhantomAndAlteredRequests(t *testing.T) {
	e := entries("rpc",
		sent{movie: 1, outcome: ledger.Acknowledged, tenths: []int64{80, 60}},     // r-1, r-2
		sent{movie: 1, outcome: ledger.Ambiguous, tenths: []int64{30, 100}},       // r-3, r-4
		sent{movie: 1, outcome: ledger.Failed, cause: "5xx", tenths: []int64{50}}, // r-5
		sent{movie: 2, outcome: ledger.Acknowledged, tenths: []int64{40}},         // r-6
	)
	applied := map[string]AppliedRequest{
		"r-1":    {MovieID: 1, SumTenths: 80},
		"r-3":    {MovieID: 1, SumTenths: 30},
		"r-5":    {MovieID: 1, SumTenths: 50},
		"r-6":    {MovieID: 2, SumTenths: 45}, // altered value
		"before": {MovieID: 1, SumTenths: 70}, // not this run's
	}
	c := CheckRequests("rpc", e, applied)
	want := RequestCheck{Lost: 1, Phantoms: 1, AmbiguousApplied: 1, AmbiguousNotApplied: 1, Altered: 1}
	got := *c
	got.LostIDs, got.PhantomIDs, got.AlteredIDs = nil, nil, nil
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if fmt.Sprint(c.LostIDs, c.PhantomIDs, c.AlteredIDs) != "[r-2] [r-5] [r-6]" {
		t.Errorf("ids = %v %v %v", c.LostIDs, c.PhantomIDs, c.AlteredIDs)
	}
	if c.OK() {
		t.Error("OK despite a loss")
	}
}

func TestAllPairsBaselinesAndSaysWhenOneIsMissing(t *testing.T) {
	e := entries("rpc", sent{movie: 1, outcome: ledger.Acknowledged, tenths: []int64{50}})
	in := Inputs{
		Variants: []string{"rpc", "stream"},
		Entries:  e,
		Baseline: []Snapshot{snap(SourceAPI, MovieState{MovieID: 1, Count: 1, SumTenths: 10})},
		Final: []Snapshot{
			{Variant: "stream", Source: SourceAPI},
			snap(SourceStore, MovieState{MovieID: 1, Count: 2, SumTenths: 60}),
			snap(SourceAPI, MovieState{MovieID: 1, Count: 2, SumTenths: 60}),
		},
		Applied: map[string]map[string]AppliedRequest{"rpc": {"r-1": {MovieID: 1, SumTenths: 50}}},
	}
	rs := All(in)
	if len(rs) != 3 {
		t.Fatalf("want 3 results, got %d", len(rs))
	}
	order := fmt.Sprint(rs[0].Variant, rs[0].Source, " ", rs[1].Variant, rs[1].Source, " ", rs[2].Variant, rs[2].Source)
	if order != "rpcapi rpcstore streamapi" {
		t.Errorf("order = %s", order)
	}
	if !rs[0].OK || !rs[1].OK {
		t.Errorf("rpc should pass through both sources (the store borrows the API's baseline): %+v / %+v", rs[0], rs[1])
	}
	if rs[1].Requests == nil || rs[0].Requests != nil {
		t.Errorf("request check belongs to the store result only")
	}
	if len(rs[2].Notes) == 0 {
		t.Errorf("stream has no baseline: want a note")
	}
}

// The outcomes of docs/api.md, end to end through the audit: a 504 applied
// later is "ambiguous, applied" (correct), a 503 applied is a phantom (a
// bug), and a valid rating answered 422 is an unexpected rejection (a
// failure of the variant), while an unknown movie's 422 is as expected.
func TestTheAuditJudgesEachOutcomeByItsDefinition(t *testing.T) {
	var es []ledger.Entry
	add := func(movie, tenths int64, o ledger.Outcome, cause string, expected ledger.Outcome) {
		es = append(es, ledger.Entry{Type: ledger.TypePost, RequestID: fmt.Sprintf("r-%d", len(es)), Variant: "rpc",
			MovieID: movie, RatingTenths: tenths, Outcome: o, Cause: cause, Expected: expected})
	}
	add(1, 50, ledger.Acknowledged, "", ledger.Acknowledged)
	add(1, 70, ledger.Ambiguous, ledger.CauseOutcomeUnknown, ledger.Acknowledged) // 504, applied later
	add(2, 40, ledger.Ambiguous, ledger.CauseOutcomeUnknown, ledger.Acknowledged) // 504, never applied
	add(900001, 30, ledger.Rejected, ledger.CauseHTTP4xx, ledger.Rejected)        // an unknown movie: as expected
	ok := Check("rpc", es, snap(SourceStore), snap(SourceStore, MovieState{MovieID: 1, Count: 2, SumTenths: 120}))
	if !ok.OK || ok.Phantoms != 0 || ok.AmbiguousApplied != 1 || ok.AmbiguousNotApplied != 1 || ok.UnexpectedRejections != 0 {
		t.Errorf("504s applied or not are both correct: %+v", ok)
	}

	add(3, 60, ledger.Failed, ledger.CauseHTTP5xx, ledger.Acknowledged) // 503, yet applied
	phantom := Check("rpc", es, snap(SourceStore), snap(SourceStore, MovieState{MovieID: 1, Count: 2, SumTenths: 120}, MovieState{MovieID: 3, Count: 1, SumTenths: 60}))
	if phantom.OK || phantom.Phantoms != 1 {
		t.Errorf("a 503 applied is a phantom: %+v", phantom)
	}

	add(4, 80, ledger.Rejected, ledger.CauseHTTP4xx, ledger.Acknowledged) // a valid rating refused
	unexpected := Check("rpc", append(es[:4:4], es[len(es)-1]), snap(SourceStore), snap(SourceStore, MovieState{MovieID: 1, Count: 2, SumTenths: 120}))
	if unexpected.OK || unexpected.UnexpectedRejections != 1 || len(unexpected.UnexpectedIDs) != 1 || unexpected.Phantoms != 0 {
		t.Errorf("a valid rating answered 422 fails the audit: %+v", unexpected)
	}
}

// A retried rating is one rating: counted once it is fine, counted twice the
// audit says so and ties the double to the retry.
func TestCheckCountsRetriedRatingsAndTheirDoubles(t *testing.T) {
	es := entries("rpc",
		sent{movie: 1, outcome: ledger.Acknowledged, tenths: []int64{70}},
		sent{movie: 2, outcome: ledger.Acknowledged, tenths: []int64{50}},
		sent{movie: 3, outcome: ledger.Acknowledged, tenths: []int64{40}},
	)
	retried := []ledger.Attempt{{Outcome: ledger.Ambiguous, Status: 504, Cause: ledger.CauseOutcomeUnknown}, {Outcome: ledger.Ambiguous, Cause: ledger.CauseTimeout}, {Outcome: ledger.Acknowledged, Status: 201}}
	es[0].Attempts, es[1].Attempts = retried, retried[1:]
	base := snap(SourceAPI)
	once := Check("rpc", es, base, snap(SourceAPI, MovieState{1, 1, 70}, MovieState{2, 1, 50}, MovieState{3, 1, 40}))
	if !once.OK || once.Retried != 2 || once.Retries != 3 || once.RetriedDoubled != 0 {
		t.Errorf("retried ratings counted once: %+v", once)
	}
	// Movie 1's retried rating counted twice; movie 3 (never retried)
	// doubled too: only the first is the retry's.
	twice := Check("rpc", es, base, snap(SourceAPI, MovieState{1, 2, 140}, MovieState{2, 1, 50}, MovieState{3, 2, 80}))
	if twice.OK || twice.Duplicates != 2 || twice.RetriedDoubled != 1 {
		t.Errorf("a retried rating counted twice: duplicates %d, retried doubled %d", twice.Duplicates, twice.RetriedDoubled)
	}
}

// A movie added during the run may be refused until the variant first
// answered a rating of it with a 2xx; a refusal sent after that answer is a
// failure, whatever the load generator expected when the answers came in.
func TestCheckCountsARefusalOfTheNewMovieAfterConvergenceAsUnexpected(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rating := func(id string, s int, o ledger.Outcome, expected ledger.Outcome) ledger.Entry {
		return ledger.Entry{Type: ledger.TypePost, RequestID: id, Variant: "stream", MovieID: 500, NewMovie: true,
			RatingTenths: 70, Rating: 7, Outcome: o, Expected: expected, SentAt: t0.Add(time.Duration(s) * time.Second), LatencyNs: time.Second}
	}
	es := []ledger.Entry{
		rating("before", 1, ledger.Rejected, ledger.Rejected),
		rating("first-ack", 2, ledger.Acknowledged, ledger.Acknowledged), // answered at 3 s
		// Answered before the ack came in, so the generator owed a refusal.
		rating("late", 4, ledger.Rejected, ledger.Rejected),
	}
	r := Check("stream", es, Snapshot{Source: SourceAPI}, Snapshot{Source: SourceAPI, Movies: []MovieState{{MovieID: 500, Count: 1, SumTenths: 70}}})
	if r.UnexpectedRejections != 1 || len(r.UnexpectedIDs) != 1 || r.UnexpectedIDs[0] != "late" || r.OK {
		t.Errorf("want the refusal after convergence (late) unexpected and the audit failed, got %d %v ok=%v", r.UnexpectedRejections, r.UnexpectedIDs, r.OK)
	}
	// Sent while the first ack was still on its way: it may have been
	// checked before the variant saw the movie.
	es[2].SentAt = t0.Add(2500 * time.Millisecond)
	r = Check("stream", es, Snapshot{Source: SourceAPI}, Snapshot{Source: SourceAPI, Movies: []MovieState{{MovieID: 500, Count: 1, SumTenths: 70}}})
	if r.UnexpectedRejections != 0 || !r.OK {
		t.Errorf("a refusal before convergence is owed, got %d unexpected, ok=%v", r.UnexpectedRejections, r.OK)
	}
}
