package embedded

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/ratingslab/lab/services/model"
)

// produceKeys writes one record per key to partition 0 of topic (one batch
// each), with value v.
func produceKeys(t *testing.T, addr, topic string, keys []string, v string) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond,
		Balancer: kafka.BalancerFunc(func(kafka.Message, ...int) int { return 0 })}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, k := range keys {
		if err := w.WriteMessages(ctx, kafka.Message{Key: []byte(k), Value: []byte(v)}); err != nil {
			t.Fatal(err)
		}
	}
}

func keys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("movie/%d", i)
	}
	return out
}

// latest reads partition 0 of topic from its start to its end: the last
// value per key, and how many records were read.
func latest(t *testing.T, addr, topic string, end int64) (map[string]string, int) {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: topic, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, n := map[string]string{}, 0
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got[string(m.Key)] = string(m.Value)
		n++
		if m.Offset == end-1 {
			return got, n
		}
	}
}

func cleaner(t *testing.T, c *kfake.Cluster, addr, dir string) (*Cleaner, *[]CleanRun) {
	t.Helper()
	cl, err := NewCleaner(c, addr, dir, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	var runs []CleanRun
	cl.OnClean = func(r CleanRun) { runs = append(runs, r) }
	return cl, &runs
}

func bytesOf(c *kfake.Cluster, topic string) int64 { return c.PartitionInfo(topic, 0).NumBytes }

// The cleaner compacts the way Kafka's does: only once the bytes written
// since the last clean reach min.cleanable.dirty.ratio (0.5) of the
// compacted log. A log with nothing new is never compacted again, however
// many checks pass — kfake's own cleaner rewrote it at every one, holding
// every Produce meanwhile — and a compaction keeps the latest value of
// every key.
func TestCleanerCompactsOnlyADirtyLog(t *testing.T) {
	addr := freeAddr(t)
	c, _ := open(t, addr, t.TempDir())
	defer c.Close()
	ctx := context.Background()
	cl, runs := cleaner(t, c, addr, "")

	produceKeys(t, addr, model.TopicMovies, keys(40), "v1")
	if ch := cl.Tick(ctx); !ch.Ran || ch.DirtyRatio != 1 {
		t.Fatalf("first check of a log never cleaned: %+v, want a clean at dirty ratio 1", ch)
	}
	clean := bytesOf(c, model.TopicMovies)

	for i := range 20 {
		if ch := cl.Tick(ctx); ch.Ran || ch.DirtyBytes != 0 {
			t.Fatalf("check %d with nothing written since the clean: %+v, want no clean and nothing dirty", i, ch)
		}
	}

	// A fifth of the keys again: dirty, but below half of the log.
	produceKeys(t, addr, model.TopicMovies, keys(8), "v2")
	ch := cl.Tick(ctx)
	if ch.Ran || ch.DirtyRatio <= 0 || ch.DirtyRatio >= DefaultDirtyRatio {
		t.Fatalf("check with %d of %d bytes dirty: %+v, want no clean", ch.DirtyBytes, ch.Bytes, ch)
	}
	if got := bytesOf(c, model.TopicMovies); got != clean+ch.DirtyBytes {
		t.Errorf("the log holds %d bytes after a check below the ratio, want %d (nothing rewritten)", got, clean+ch.DirtyBytes)
	}

	// Every key again: more than half of the log is dirty.
	produceKeys(t, addr, model.TopicMovies, keys(40), "v3")
	ch = cl.Tick(ctx)
	if !ch.Ran || ch.DirtyRatio < DefaultDirtyRatio {
		t.Fatalf("check with %d of %d bytes dirty: %+v, want a clean", ch.DirtyBytes, ch.Bytes, ch)
	}
	if len(*runs) != 2 {
		t.Fatalf("%d cleans over 23 checks, want 2: %+v", len(*runs), *runs)
	}
	if r := (*runs)[1]; r.BytesAfter >= r.BytesBefore || r.Held <= 0 {
		t.Errorf("second clean: %+v, want fewer bytes after and the time it held the broker", r)
	}

	pi := c.PartitionInfo(model.TopicMovies, 0)
	got, n := latest(t, addr, model.TopicMovies, pi.HighWatermark)
	if n > 41 { // 40 keys; kfake keeps the last batch whatever it holds
		t.Errorf("%d records left after compaction, want at most 41", n)
	}
	for _, k := range keys(40) {
		if got[k] != "v3" {
			t.Errorf("%s = %q after compaction, want its latest value v3", k, got[k])
		}
	}
}

// What the cleaner knows is clean survives a restart (Kafka's
// cleaner-offset-checkpoint): a broker restarted on a clean data dir does
// not compact it again at its first check.
func TestCleanerCheckpointSurvivesARestart(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	c, _ := open(t, addr, dir)
	cl, _ := cleaner(t, c, addr, dir)
	produceKeys(t, addr, model.TopicRatedMovies, keys(30), "v1")
	if ch := cl.Tick(context.Background()); !ch.Ran {
		t.Fatalf("first check: %+v, want a clean", ch)
	}
	c.Close()

	c, _ = open(t, addr, dir)
	defer c.Close()
	cl, runs := cleaner(t, c, addr, dir)
	if ch := cl.Tick(context.Background()); ch.Ran || ch.DirtyBytes != 0 {
		t.Errorf("first check after a restart on a clean log: %+v, want no clean and nothing dirty", ch)
	}
	if len(*runs) != 0 {
		t.Errorf("cleans after the restart: %+v, want none", *runs)
	}
}

// A topic someone created with a retention (lab log import --config) is
// still trimmed at every check, as kfake's cleaner did: retention is not
// held back by the dirty ratio.
func TestCleanerAppliesRetentionAtEveryCheck(t *testing.T) {
	addr := freeAddr(t)
	c, _ := open(t, addr, t.TempDir())
	defer c.Close()
	const topic = "imported-week"
	if err := c.CreateTopic(topic, 1, map[string]string{"retention.ms": "60000"}); err != nil {
		t.Fatal(err)
	}
	produce(t, addr, topic, 3, time.Now().Add(-time.Hour))
	cl, runs := cleaner(t, c, addr, "")
	cl.Tick(context.Background())
	if start, end := logStart(t, c, topic); start != 3 || end != 3 {
		t.Errorf("%s after a check holds [%d, %d), want [3, 3): hour-old records outlived retention.ms=60000", topic, start, end)
	}
	if len(*runs) != 0 {
		t.Errorf("cleans: %+v, want none (no compacted topic has records)", *runs)
	}
}

func TestCleanerRefusesABadRatio(t *testing.T) {
	for _, r := range []float64{-0.5, 1.5} {
		if _, err := NewCleaner(nil, "", "", r, nil); err == nil {
			t.Errorf("ratio %v accepted", r)
		}
	}
}

// A compacted topic the lab did not create (lab log import --config
// cleanup.policy=compact) is found through the broker's topic list and
// cleaned like the lab's own.
func TestCleanerCleansTopicsTheLabDidNotCreate(t *testing.T) {
	addr := freeAddr(t)
	c, _ := open(t, addr, t.TempDir())
	defer c.Close()
	const topic = "imported-table"
	if err := c.CreateTopic(topic, 1, map[string]string{"cleanup.policy": "compact", "retention.ms": "-1"}); err != nil {
		t.Fatal(err)
	}
	produceKeys(t, addr, topic, keys(10), "v1")
	produceKeys(t, addr, topic, keys(10), "v2")
	before := bytesOf(c, topic)
	cl, runs := cleaner(t, c, addr, "")
	if ch := cl.Tick(context.Background()); !ch.Ran || ch.Bytes != before {
		t.Fatalf("check: %+v, want a clean of the topic's %d bytes", ch, before)
	}
	if after := bytesOf(c, topic); after >= before {
		t.Errorf("%s holds %d bytes after the clean, %d before: its superseded records were kept", topic, after, before)
	}
	if len(*runs) != 1 {
		t.Errorf("cleans: %+v, want 1", *runs)
	}
}
