package audit

import (
	"strings"
	"testing"
)

// A baseline taken while the stream variant's view lagged its store (the
// view stale after rated-movies could not be written): the ratings it was
// behind are counted as duplicates by the API's audit when they arrive, so
// the API's result says so; the store's result needs no note.
func TestABaselineWhoseViewLaggedItsStoreIsNoted(t *testing.T) {
	stream := func(source string, ms ...MovieState) Snapshot {
		return Snapshot{Variant: "stream", Source: source, Movies: ms}
	}
	store := stream(SourceStore, MovieState{MovieID: 1, Count: 5, SumTenths: 250}, MovieState{MovieID: 2, Count: 3, SumTenths: 90})
	view := stream(SourceAPI, MovieState{MovieID: 1, Count: 2, SumTenths: 100}, MovieState{MovieID: 2, Count: 3, SumTenths: 90})
	if movies, behind := Disagreement(view, store); movies != 1 || behind != 3 {
		t.Errorf("Disagreement = %d movies, %d behind; want 1 and 3", movies, behind)
	}
	if movies, behind := Disagreement(store, store); movies != 0 || behind != 0 {
		t.Errorf("a snapshot agrees with itself: %d, %d", movies, behind)
	}
	final := []Snapshot{stream(SourceAPI, store.Movies...), stream(SourceStore, store.Movies...)}
	es := entries("stream")
	rs := All(Inputs{Variants: []string{"stream"}, Entries: es, Baseline: []Snapshot{view, store}, Final: final})
	if len(rs) != 2 {
		t.Fatalf("want 2 results, got %d", len(rs))
	}
	api, st := rs[0], rs[1]
	if api.Duplicates != 3 || len(api.Notes) != 1 || !strings.Contains(api.Notes[0], "differed from the store on 1 movie(s) when the run started (3 rating(s) behind)") {
		t.Errorf("API audit: %d duplicates, notes %q; want 3 and the baseline noted", api.Duplicates, api.Notes)
	}
	if !st.OK || len(st.Notes) != 0 {
		t.Errorf("store audit: %+v; want OK without notes", st)
	}
}
