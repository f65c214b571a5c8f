package stream

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
	"github.com/ratingslab/lab/services/movies/connect"
	"github.com/ratingslab/lab/services/movies/legacydb"
	ratingsstream "github.com/ratingslab/lab/services/ratings/stream"
)

// The whole log variant in one process: legacy DB → movies-connect →
// movies → ratings-stream ← ratings ← webserver-stream, and rated-movies →
// webserver-stream's view.
func TestTheLogVariantEndToEnd(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	db, _, err := legacydb.Create(filepath.Join(t.TempDir(), "legacy", "movies.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := connect.New(connect.Config{Cluster: f.admin, DB: db, DataDir: t.TempDir(), PollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	proc, err := ratingsstream.New(ratingsstream.Config{Cluster: f.admin, DataDir: t.TempDir(),
		HeartbeatInterval: 200 * time.Millisecond, SessionTimeout: 6 * time.Second, RebalanceTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer proc.Close()
	done := make(chan struct{}, 2)
	go func() { conn.Run(ctx); done <- struct{}{} }()
	go func() { proc.Run(ctx); done <- struct{}{} }()
	defer func() { cancel(); <-done; <-done }()

	w := f.start(t.TempDir(), 2*time.Second)
	w.waitReady(t)
	servetest.WaitFor(t, 20*time.Second, "the catalog in the view", func() (bool, string) {
		var page struct{ Total int }
		w.get(t, "/api/movies", &page)
		return page.Total >= 100, fmt.Sprint(page.Total)
	})

	// Ratings, one of them retried with its request id: counted once.
	for i, r := range []string{"7", "8.5", "10", "1"} {
		code, body := w.post(t, fmt.Sprintf(`{"movie_id": 3, "rating": %s, "request_id": "e2e-%d"}`, r, i))
		if code != 202 {
			t.Fatalf("POST = %d %s", code, body)
		}
	}
	if code, _ := w.post(t, `{"movie_id": 3, "rating": 7, "request_id": "e2e-0"}`); code != 202 {
		t.Fatalf("retry = %d, want 202", code)
	}
	servetest.WaitFor(t, 20*time.Second, "the ratings in the view", func() (bool, string) {
		var m model.RatedMovie
		w.get(t, "/api/movies/3", &m)
		return m.Count == 4 && m.SumTenths == 265, fmt.Sprintf("%+v", m)
	})

	// A movie added and one edited in the legacy DB reach the view, and the
	// new one can be rated.
	added, err := db.Add(ctx, model.Movie{Title: "Added Through Connect", ReleaseYear: 2025})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Edit(ctx, 5, func(m *model.Movie) { m.Title = "Edited Through Connect" }); err != nil {
		t.Fatal(err)
	}
	servetest.WaitFor(t, 10*time.Second, "the add and the edit in the view", func() (bool, string) {
		var a, e model.RatedMovie
		w.get(t, fmt.Sprintf("/api/movies/%d", added.ID), &a)
		w.get(t, "/api/movies/5", &e)
		return a.Title == "Added Through Connect" && e.Title == "Edited Through Connect", fmt.Sprintf("%+v %+v", a, e)
	})
	if code, body := w.post(t, fmt.Sprintf(`{"movie_id": %d, "rating": 9}`, added.ID)); code != 202 {
		t.Fatalf("rating the new movie = %d %s", code, body)
	}
	servetest.WaitFor(t, 20*time.Second, "the new movie's rating in the view", func() (bool, string) {
		var m model.RatedMovie
		w.get(t, fmt.Sprintf("/api/movies/%d", added.ID), &m)
		return m.Count == 1 && m.Average == 9, fmt.Sprintf("%+v", m)
	})
	if n := histogramCount(t, w.reg, "lab_view_freshness_seconds"); n == 0 {
		t.Error("freshness not observed")
	}

}
