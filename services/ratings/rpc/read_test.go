package rpc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ratingslab/lab/services/model"
)

// A tool outside the part (lab audit) reads the store, read-only, while
// the part keeps writing it; a missing store is not created.
func TestReaderReadsTheStoreWhileThePartRuns(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := OpenReader(ctx, filepath.Join(dir, DBFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing store: %v, want an error wrapping os.ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Join(dir, DBFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("reading created the store")
	}
	s, err := OpenStore(dir, SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	movie := model.Movie{ID: 3, Title: "The General", ReleaseYear: 1926}
	for _, r := range []model.Rating{{RequestID: "a", MovieID: 3, Tenths: 70}, {RequestID: "b", MovieID: 3, Tenths: 85}} {
		if _, err := s.Apply(ctx, r, movie); err != nil {
			t.Fatal(err)
		}
	}

	r, err := OpenReader(ctx, filepath.Join(dir, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if totals, err := r.Totals(ctx); err != nil || len(totals) != 1 || totals[0] != (MovieTotal{MovieID: 3, Count: 2, SumTenths: 155}) {
		t.Errorf("totals = %+v, %v", totals, err)
	}
	if applied, err := r.AppliedRequests(ctx); err != nil || len(applied) != 2 || applied["b"] != (Applied{MovieID: 3, RatingTenths: 85}) {
		t.Errorf("applied = %+v, %v", applied, err)
	}
}
