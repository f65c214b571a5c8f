package rpc

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ratingslab/lab/services/model"
)

// The filter may say "maybe" for an id never added (a store read follows),
// never "no" for one added: across its growth into several levels, and
// with about 1 % false positives.
func TestTheSeenFilterNeverForgetsAnID(t *testing.T) {
	var f seenFilter
	f.ready.Store(true)
	const ids = 5 * filterFirstLimit // four levels
	for i := range ids {
		f.add(fmt.Sprintf("r-%d", i))
	}
	if len(f.levels) < 3 {
		t.Fatalf("%d levels after %d ids, want it to have grown", len(f.levels), ids)
	}
	for i := range ids {
		if id := fmt.Sprintf("r-%d", i); !f.mayHave(id) {
			t.Fatalf("mayHave(%q) = false after it was added", id)
		}
	}
	maybe := 0
	const others = 100_000
	for i := range others {
		if f.mayHave(fmt.Sprintf("other-%d", i)) {
			maybe++
		}
	}
	// Each level holds at most its limit at ~0.8 %; a lookup checks all.
	if rate := float64(maybe) / others; rate > 0.04 {
		t.Errorf("%.2f %% of never-added ids answered maybe, want a few percent at most", 100*rate)
	}
}

// A reopened store answers FirstUse for the ids written before it opened,
// from the store while the filter loads and from the filter after.
func TestFirstUseIsExactAcrossAReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := OpenStore(dir, SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	movie := model.Movie{ID: 3, Title: "Three", ReleaseYear: 2001}
	for i := range 300 {
		if _, err := s.Apply(ctx, model.Rating{RequestID: fmt.Sprintf("r-%d", i), MovieID: 3, Tenths: int64(10 + i%91), UserID: int64(i)}, movie); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = OpenStore(dir, SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check := func(when string) {
		t.Helper()
		for i := range 300 {
			first, _, found, err := s.FirstUse(ctx, fmt.Sprintf("r-%d", i))
			if err != nil || !found || first.Tenths != int64(10+i%91) || first.UserID != int64(i) {
				t.Fatalf("%s: FirstUse(r-%d) = %+v, %v, %v; want its rating", when, i, first, found, err)
			}
		}
		if _, _, found, err := s.FirstUse(ctx, "never"); err != nil || found {
			t.Fatalf("%s: FirstUse(never) = found %v, %v; want not found", when, found, err)
		}
	}
	check("while the filter may still load")
	select {
	case <-s.seenLoaded:
	case <-time.After(10 * time.Second):
		t.Fatal("the filter did not load within 10s")
	}
	check("after the filter loaded")
	if _, err := s.Apply(ctx, model.Rating{RequestID: "new", MovieID: 3, Tenths: 50}, movie); err != nil {
		t.Fatal(err)
	}
	if _, _, found, _ := s.FirstUse(ctx, "new"); !found {
		t.Fatal("FirstUse(new) after its Apply = not found")
	}
}
