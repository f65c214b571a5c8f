package connect

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/kafkatest"
	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
	"github.com/ratingslab/lab/services/movies/legacydb"
)

type fixture struct {
	t  *testing.T
	k  *kafkaio.Cluster
	db *legacydb.DB
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	b := kafkatest.Start(t, kafkatest.LabTopics)
	k := kafkatest.Client(t, kafkaio.Config{Brokers: []string{b.Addr}}, nil)
	db, _, err := legacydb.Create(filepath.Join(t.TempDir(), "legacy", "movies.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &fixture{t: t, k: k, db: db}
}

// run starts a connector on dir and returns its stop function.
func (f *fixture) run(dir string) (*Connector, func()) {
	f.t.Helper()
	c, err := New(Config{Cluster: f.k, DB: f.db, DataDir: dir, PollInterval: 50 * time.Millisecond, BatchSize: 40})
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { f.stop(cancel, done) }) }
	f.t.Cleanup(stop)
	return c, stop
}

func (f *fixture) stop(cancel context.CancelFunc, done chan error) {
	cancel()
	select {
	case err := <-done:
		if err != nil {
			f.t.Errorf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		f.t.Error("connector did not stop")
	}
}

// topic reads every record of the movies topic, in order.
func (f *fixture) topic() []kafka.Message {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := f.k.Offsets(ctx, model.TopicMovies, []int{0})
	if err != nil {
		f.t.Fatal(err)
	}
	if b[0].End == b[0].First {
		return nil
	}
	fe, err := f.k.NewFetcher(model.TopicMovies, map[int]int64{0: b[0].First}, kafkaio.FetchOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	defer fe.Close()
	var out, buf []kafka.Message
	for len(out) == 0 || out[len(out)-1].Offset+1 < b[0].End {
		if buf, err = fe.Next(ctx, buf, 500); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, buf...)
	}
	return out
}

// table is the topic folded into the latest movie per key.
func (f *fixture) table() map[int64]model.Movie {
	out := map[int64]model.Movie{}
	for _, m := range f.topic() {
		mv, ok, err := model.DecodeMovie(m.Value)
		if err != nil || !ok {
			f.t.Fatalf("record %d: %v", m.Offset, err)
		}
		if string(m.Key) != strconv.FormatInt(mv.ID, 10) {
			f.t.Fatalf("record %d: key %q is not movie id %d", m.Offset, m.Key, mv.ID)
		}
		out[mv.ID] = mv
	}
	return out
}

func TestSnapshotThenChangesReachTheTopicAndThePositionSurvivesARestart(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	catalog, total, err := f.db.Movies(ctx, 0, legacydb.MaxPage)
	if err != nil {
		t.Fatal(err)
	}
	if total < 100 {
		t.Fatalf("seed catalog has %d movies", total)
	}
	dir := t.TempDir()
	c, stop := f.run(dir)

	servetest.WaitFor(t, 20*time.Second, "the snapshot", func() (bool, string) {
		err := c.Ready(ctx)
		return err == nil, fmt.Sprint(err)
	})
	table := f.table()
	if len(table) != total {
		t.Fatalf("topic holds %d movies, catalog %d", len(table), total)
	}
	for _, m := range catalog {
		if got := table[m.ID]; got.Title != m.Title || got.ReleaseYear != m.ReleaseYear || got.Version != m.Version {
			t.Fatalf("movie %d in the topic: %+v, catalog %+v", m.ID, got, m)
		}
	}

	added, err := f.db.Add(ctx, model.Movie{Title: "Connector Test", ReleaseYear: 2026, Genres: []string{"Drama"}})
	if err != nil {
		t.Fatal(err)
	}
	edited, err := f.db.Edit(ctx, catalog[3].ID, func(m *model.Movie) { m.Title = "Renamed by the test" })
	if err != nil {
		t.Fatal(err)
	}
	servetest.WaitFor(t, 10*time.Second, "the add and the edit to reach the topic", func() (bool, string) {
		tb := f.table()
		return tb[added.ID].Title == "Connector Test" && tb[edited.ID].Title == "Renamed by the test" && tb[edited.ID].Version == edited.Version,
			fmt.Sprintf("added %+v edited %+v", tb[added.ID], tb[edited.ID])
	})

	stop()
	records := len(f.topic())
	// A restart resumes from the stored position: no new snapshot.
	c, _ = f.run(dir)
	if !c.Position().SnapshotDone {
		t.Fatal("restarted connector lost its position")
	}
	edited2, err := f.db.Edit(ctx, catalog[5].ID, func(m *model.Movie) { m.ReleaseYear = 1901 })
	if err != nil {
		t.Fatal(err)
	}
	servetest.WaitFor(t, 10*time.Second, "the edit after the restart", func() (bool, string) {
		return f.table()[edited2.ID].ReleaseYear == 1901, ""
	})
	if got := len(f.topic()); got != records+1 {
		t.Errorf("after the restart the topic grew by %d records, want 1 (no re-snapshot)", got-records)
	}
}

func TestMissingTopicIsReportedAndRunGivesUp(t *testing.T) {
	b := kafkatest.Start(t, nil)
	k, err := kafkaio.NewCluster(kafkaio.Config{Brokers: []string{b.Addr}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	db, _, err := legacydb.Create(filepath.Join(t.TempDir(), "movies.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err := New(Config{Cluster: k, DB: db, DataDir: t.TempDir(), TopicWait: kafkaio.TopicWait{Timeout: 500 * time.Millisecond, Interval: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(context.Background()); err == nil {
		t.Fatal("Run succeeded without the movies topic")
	}
	if err := c.Ready(context.Background()); err == nil {
		t.Fatal("health is ok without the movies topic")
	} else if want := model.TopicMovies; !strings.Contains(err.Error(), want) {
		t.Errorf("health should name the topic: %v", err)
	}
}
