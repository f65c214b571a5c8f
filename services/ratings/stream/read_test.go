package stream

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ratingslab/lab/services/lib/kafkaio/moviestable"
	"github.com/ratingslab/lab/services/lib/requestids"
	"github.com/ratingslab/lab/services/model"
)

// A tool outside the part reads what the processor committed, read-only,
// while the processor keeps the database open.
func TestReaderReadsTheCommittedStateWhileThePartRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ids := []requestids.Entry{{ID: 1, Fingerprint: 2, Time: 3, Offset: 40}, {ID: 5, Fingerprint: 6, Time: 7, Offset: 41}}
	aggs := []*aggregate{{MovieID: 7, Partition: 1, Count: 2, SumTenths: 155, SourceOffset: 42, LastEvent: time.Now()}}
	if err := s.commit(ctx, aggs, map[int]int64{1: 42}, map[int]idChanges{1: {added: ids, forgetBelow: -1}}); err != nil {
		t.Fatal(err)
	}
	if err := s.applyMovies(ctx, []moviestable.Change{{ID: 7, Movie: model.Movie{ID: 7, Title: "Sunrise", ReleaseYear: 1927}}}, map[int]int64{0: 1}); err != nil {
		t.Fatal(err)
	}

	r, err := OpenReader(ctx, filepath.Join(dir, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := r.Aggregates(ctx)
	if err != nil || len(got) != 1 || got[0] != (Aggregate{MovieID: 7, Partition: 1, Count: 2, SumTenths: 155, SourceOffset: 42}) {
		t.Errorf("aggregates = %+v, %v", got, err)
	}
	if pos, err := r.Positions(ctx); err != nil || len(pos) != 1 || pos[1] != 42 {
		t.Errorf("positions of ratings = %v, %v (the movies topic's are not included)", pos, err)
	}
	if movies, err := r.MovieIDs(ctx); err != nil || len(movies) != 1 || movies[0] != 7 {
		t.Errorf("movie ids = %v, %v", movies, err)
	}
	if kept, err := r.RequestIDs(ctx, 1); err != nil || len(kept) != 2 || kept[1] != ids[1] {
		t.Errorf("request ids = %+v, %v", kept, err)
	}
	if d, err := r.RequestIDRetention(ctx); err != nil || d <= 0 {
		t.Errorf("retention = %s, %v", d, err)
	}
}
