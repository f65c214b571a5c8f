package kafkaio_test

import (
	"context"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/kafkatest"
	"github.com/ratingslab/lab/services/lib/servetest"
)

// A tailer is caught up when its position reaches the end, not when it was
// given a record at end-1 (the model of kafkaio.ReadCommitted). Here the
// last offsets hold records no committed reader is ever given: a broker
// killed with a transaction open counted it aborted when it came back and
// wrote no abort marker (kfake itself does so; the lab's broker and Apache
// Kafka's coordinator write one — the tailer must not depend on it).
func TestCommittedTailerCatchesUpWhenTheLastOffsetsHoldNothingForIt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CreateTopic("view", 1, map[string]string{"cleanup.policy": "compact"}); err != nil {
		t.Fatal(err)
	}
	ctx := servetest.Context(t, 20*time.Second)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()[0]), kgo.TransactionalID("view-writer"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	produce := func(key, value string) {
		t.Helper()
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "view", Partition: 0, Key: []byte(key), Value: []byte(value)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for _, step := range []func() error{cl.BeginTransaction, func() error { produce("m1", "c1"); return nil },
		func() error { return cl.EndTransaction(ctx, kgo.TryCommit) }, cl.BeginTransaction,
		func() error { produce("m1", "open1"); produce("m2", "open2"); return nil }} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	// kill -9: the data dir as it was, nothing a clean stop saves.
	died := t.TempDir()
	if err := os.CopyFS(died, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	c.Close()
	c, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(died))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)

	k := newCluster(t, c.ListenAddrs()[0])
	if b, err := k.OffsetsCommitted(ctx, "view", []int{0}); err != nil || b[0].End != 4 {
		t.Fatalf("bounds %v (%v), want end 4: c1, its marker, open1, open2", b, err)
	}
	applied, tl := runTailer(t, k, "view", nil, true)
	began := time.Now()
	if err := tl.WaitCaughtUp(servetest.Context(t, 10*time.Second)); err != nil {
		t.Fatalf("not caught up (position %v): %v", tl.Position(), err)
	}
	t.Logf("caught up in %s", time.Since(began).Round(time.Millisecond))
	if got := applied(); !slices.Equal(got, []string{"c1"}) {
		t.Fatalf("applied %q, want c1 only", got)
	}
	if pos := tl.Position()[0]; pos != 4 {
		t.Errorf("position %d, want 4: past the offsets that hold nothing for it", pos)
	}
}

// On the lab's broker, compaction leaves gaps in a compacted topic: a tailer
// resuming inside one, or reading across them, is caught up at the end.
func TestTailerCatchesUpAcrossCompactedGaps(t *testing.T) {
	t.Parallel()
	for _, committed := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "committed"}[committed]
		t.Run(name, func(t *testing.T) {
			b := kafkatest.Start(t, []kafkatest.Topic{{Name: "view", Partitions: 1, Configs: map[string]string{"cleanup.policy": "compact"}}})
			k := newCluster(t, b.Addr)
			ctx := servetest.Context(t, 20*time.Second)
			opts := []kgo.Opt{kgo.SeedBrokers(b.Addr), kgo.RecordPartitioner(kgo.ManualPartitioner())}
			if committed {
				opts = append(opts, kgo.TransactionalID("view-writer"))
			}
			cl, err := kgo.NewClient(opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			for i, v := range []string{"a", "b", "c", "d"} { // one batch each; m1 is rewritten
				if committed {
					if err := cl.BeginTransaction(); err != nil {
						t.Fatal(err)
					}
				}
				key := "m1"
				if i == 1 {
					key = "m2"
				}
				if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "view", Partition: 0, Key: []byte(key), Value: []byte(v)}).FirstErr(); err != nil {
					t.Fatal(err)
				}
				if committed {
					if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
						t.Fatal(err)
					}
				}
			}
			b.Compact()
			applied, tl := runTailer(t, k, "view", map[int]int64{0: 1}, committed) // resumes inside the first gap
			if err := tl.WaitCaughtUp(servetest.Context(t, 10*time.Second)); err != nil {
				t.Fatalf("not caught up (position %v): %v", tl.Position(), err)
			}
			if got := applied(); !slices.Contains(got, "d") || slices.Contains(got, "a") {
				t.Fatalf("applied %q, want the survivors after offset 1 (d last)", got)
			}
		})
	}
}

// runTailer runs a tailer of topic from start until the test ends and
// returns what it applied so far (values) and the tailer.
func runTailer(t *testing.T, k *kafkaio.Cluster, topic string, start map[int]int64, committed bool) (func() []string, *kafkaio.Tailer) {
	t.Helper()
	var mu sync.Mutex
	var applied []kafka.Message
	tl := k.NewTailer(topic, 1, start, func(_ context.Context, batch []kafka.Message) error {
		mu.Lock()
		defer mu.Unlock()
		applied = append(applied, batch...)
		return nil
	})
	if committed {
		tl.ReadCommitted()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tl.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return values(applied)
	}, tl
}
