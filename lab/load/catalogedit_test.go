package load

import (
	"testing"
	"time"
)

// fixedSource is a source of ratings of movie 1, then reads of it.
type fixedSource struct{}

func (fixedSource) Request(seq uint64) (Request, bool) {
	if seq%5 == 4 {
		return Request{Seq: seq, Kind: KindMovie, MovieID: 1}, true
	}
	return Request{Seq: seq, Kind: KindRating, MovieID: 1, UserID: 2, Tenths: 70}, true
}

// Before the edit nothing changes; after it, a share of the ratings asked
// for later rate the new movie, the same ones every time they are asked.
func TestCatalogEditRewritesOnlyRatingsAskedAfterTheEdit(t *testing.T) {
	edit, err := NewCatalogEdit(0.5, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	src := editSource{inner: fixedSource{}, edit: edit}
	for seq := range uint64(10) {
		if r, _ := src.Request(seq); r.NewMovie || r.MovieID != 1 {
			t.Fatalf("request %d rates the new movie before the edit: %+v", seq, r)
		}
	}
	if cutoff := edit.Activate(500); cutoff != 10 {
		t.Fatalf("cutoff = %d, want 10 (the first seq not asked for yet)", cutoff)
	}
	if r, _ := src.Request(3); r.NewMovie {
		t.Fatalf("request 3 was asked for before the edit and must keep its movie: %+v", r)
	}
	var rated, ratings int
	for seq := uint64(10); seq < 2010; seq++ {
		r, _ := src.Request(seq)
		again, _ := src.Request(seq)
		if r != again {
			t.Fatalf("request %d differs between two asks: %+v vs %+v", seq, r, again)
		}
		if r.Kind == KindRating {
			ratings++
		}
		if r.NewMovie {
			rated++
			if r.MovieID != 500 || r.Kind != KindRating {
				t.Fatalf("request %d: %+v", seq, r)
			}
		}
	}
	if share := float64(rated) / float64(ratings); share < 0.45 || share > 0.55 {
		t.Errorf("share of ratings of the new movie = %.3f, want about 0.5", share)
	}
}

// A refusal is owed only when sent before the variant answered a rating of
// the movie with a 2xx, and before RefuseUntil.
func TestCatalogEditExpectsRefusalsOnlyBeforeConvergence(t *testing.T) {
	edit, _ := NewCatalogEdit(1, 10*time.Second)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	edit.begin(t0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	cases := []struct {
		variant       string
		outcome       Outcome
		sent, latency float64
		want          Outcome
	}{
		{"stream", Rejected, 1, 0, Rejected},           // not seen yet
		{"stream", Failed, 1.5, 0, Acknowledged},       // a failure is never owed
		{"stream", Acknowledged, 4, 0.5, Acknowledged}, // converged, answered at 4.5 s
		{"stream", Rejected, 3, 0, Rejected},           // sent before the first ack: still owed
		{"stream", Rejected, 4.2, 0, Rejected},         // sent before that ack was answered: may have been checked first
		{"stream", Rejected, 5, 0, Acknowledged},       // sent after convergence: a failure
		{"rpc", Rejected, 11, 0, Acknowledged},         // after RefuseUntil: a failure
		{"rpc", Rejected, 9, 0, Rejected},              // the rpc variant has not converged
	}
	for _, c := range cases {
		status := map[Outcome]int{Rejected: 422, Failed: 503, Acknowledged: 201}[c.outcome]
		if got := edit.expect(c.variant, c.outcome, status, at(c.sent), time.Duration(c.latency*float64(time.Second))); got != c.want {
			t.Errorf("%s %s sent at %vs: expected %s, want %s", c.variant, c.outcome, c.sent, got, c.want)
		}
	}
	// Only "unknown movie" can be owed: a 400 is a failure even before
	// convergence.
	if got := edit.expect("rpc", Rejected, 400, at(1), 0); got != Acknowledged {
		t.Errorf("a 400 for the new movie: expected %s, want acknowledged", got)
	}
}

func TestCatalogEditRefusesBadShares(t *testing.T) {
	for _, share := range []float64{0, -0.1, 1.5} {
		if _, err := NewCatalogEdit(share, time.Second); err == nil {
			t.Errorf("share %v accepted", share)
		}
	}
}
