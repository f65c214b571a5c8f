package connect

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/kafkatest"
	"github.com/ratingslab/lab/services/lib/serve"
	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
	"github.com/ratingslab/lab/services/movies/legacydb"
)

// A broker restart while a catalog edit waits to be streamed: the poll fails
// and is retried (bounded pauses, logged), health says why, and within
// seconds of the broker's return the connector is healthy and the edit is in
// the topic.
func TestConnectorRecoversAfterABrokerRestart(t *testing.T) {
	b := kafkatest.StartDurable(t)
	proxy := kafkatest.Forward(t, b.Addr)
	k := kafkatest.Client(t, proxy.Via(b.Addr), nil)
	admin := kafkatest.Client(t, kafkaio.Config{Brokers: []string{b.Addr}}, nil)
	db, _, err := legacydb.Create(filepath.Join(t.TempDir(), "legacy", "movies.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{t: t, k: admin, db: db}
	c, err := New(Config{Cluster: k, DB: db, DataDir: t.TempDir(), PollInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer f.stop(cancel, done)
	servetest.WaitFor(t, 20*time.Second, "the snapshot", func() (bool, string) {
		err := c.Ready(ctx)
		return err == nil, fmt.Sprint(err)
	})

	b.Stop()
	added, err := db.Add(ctx, model.Movie{Title: "Added During The Outage", ReleaseYear: 2026})
	if err != nil {
		t.Fatal(err)
	}
	// Several failed polls, so that the retry pause has grown to its cap.
	stopped := time.Now()
	servetest.WaitFor(t, 20*time.Second, "health to report the failing poll for a while", func() (bool, string) {
		err := c.Ready(ctx)
		return err != nil && time.Since(stopped) > 6*time.Second, fmt.Sprint(err)
	})

	b.Start(t)
	restarted := time.Now()
	servetest.WaitFor(t, 6*time.Second, "health OK and the edit in the topic after the restart", func() (bool, string) {
		err := c.Ready(ctx)
		return err == nil && c.Position().ID == added.ID, fmt.Sprintf("health %v, position at movie %d", err, c.Position().ID)
	})
	t.Logf("streaming again %s after the broker restarted", time.Since(restarted).Round(10*time.Millisecond))
	if got := f.table()[added.ID]; got.Title != "Added During The Outage" {
		t.Errorf("movie %d in the topic: %+v", added.ID, got)
	}
}

func TestRetryPauseGrowsToABoundedCap(t *testing.T) {
	for _, c := range []struct {
		interval time.Duration
		failures int
		want     time.Duration
	}{
		{time.Second, 1, time.Second},
		{time.Second, 2, 2 * time.Second},
		{time.Second, 50, maxRetryPause},
		{200 * time.Millisecond, 3, 600 * time.Millisecond},
		{200 * time.Millisecond, 1000, maxRetryPause},
		{5 * time.Second, 7, 5 * time.Second}, // never shorter than the poll interval
	} {
		if got := retryPause(c.interval, c.failures); got != c.want {
			t.Errorf("retryPause(%s, %d) = %s, want %s", c.interval, c.failures, got, c.want)
		}
	}
}

// A connector whose position says the catalog was streamed, over an empty
// movies topic (the broker's data wiped while its position file stayed),
// stops and says so: resuming would leave every movie before the position
// out of the log for good.
func TestConnectorRefusesToResumeOnAResetLog(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	c, stop := f.run(dir)
	servetest.WaitFor(t, 20*time.Second, "the snapshot", func() (bool, string) {
		err := c.Ready(context.Background())
		return err == nil, fmt.Sprint(err)
	})
	stop()

	// The same position file, a new broker with the lab's topics, empty.
	b := kafkatest.Start(t, kafkatest.LabTopics)
	fresh := &fixture{t: t, k: kafkatest.Client(t, kafkaio.Config{Brokers: []string{b.Addr}}, nil), db: f.db}
	again, err := New(Config{Cluster: fresh.k, DB: fresh.db, DataDir: dir, PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = again.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "log reset on movies") || !serve.IsPermanent(err) {
		t.Fatalf("Run on an empty movies topic with a stored position: %v, want a permanent log reset error", err)
	}
	if got := fresh.topic(); len(got) != 0 {
		t.Errorf("%d records streamed after the reset was found", len(got))
	}
}
