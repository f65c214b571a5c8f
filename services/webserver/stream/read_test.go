package stream

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ratingslab/lab/services/lib/kafkaio/moviestable"
	"github.com/ratingslab/lab/services/model"
)

// A tool outside the part (lab replay) reads the view, read-only, while
// the part keeps it open.
func TestReaderReadsTheViewWhileThePartRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	v, err := openView(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if err := v.applyMovies(ctx, []moviestable.Change{{ID: 3, Movie: model.Movie{ID: 3, Title: "The General", ReleaseYear: 1926}}}, map[int]int64{0: 5}); err != nil {
		t.Fatal(err)
	}
	ev := model.RatedMovieEvent{RatedMovie: model.NewRatedMovie(model.Movie{ID: 3}, model.CountAndSum{Count: 2, SumTenth: 155}),
		SourcePartition: 4, SourceOffset: 9}
	if _, err := v.applyRated(ctx, []model.RatedMovieEvent{ev}, map[int]int64{1: 2}); err != nil {
		t.Fatal(err)
	}

	r, err := OpenReader(ctx, filepath.Join(dir, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if movies, err := r.Movies(ctx); err != nil || len(movies) != 1 || movies[0].Title != "The General" || movies[0].ReleaseYear != 1926 {
		t.Errorf("movies = %+v, %v", movies, err)
	}
	if rated, err := r.Rated(ctx); err != nil || len(rated) != 1 || rated[0] != (Rated{MovieID: 3, Count: 2, SumTenths: 155, SourcePartition: 4, SourceOffset: 9}) {
		t.Errorf("rated = %+v, %v", rated, err)
	}
	pos, err := r.Positions(ctx)
	if err != nil || pos[model.TopicMovies][0] != 5 || pos[model.TopicRatedMovies][1] != 2 {
		t.Errorf("positions = %v, %v", pos, err)
	}
}
