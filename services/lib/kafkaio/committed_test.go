package kafkaio_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/kafkatest"
	"github.com/ratingslab/lab/services/lib/servetest"
)

// transactions writes, to partition 0 of topic, one committed transaction
// (c1, c2), one aborted (a1) and another committed one (c3), each in its own
// transaction of one transactional producer routed like a lab part.
func transactions(t *testing.T, k *kafkaio.Cluster, topic string) {
	t.Helper()
	ctx := servetest.Context(t, 30*time.Second)
	cl, err := kgo.NewClient(k.FranzOpts(kgo.TransactionalID("committed-test"), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, txn := range []struct {
		values []string
		commit bool
	}{{[]string{"c1", "c2"}, true}, {[]string{"a1"}, false}, {[]string{"c3"}, true}} {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, v := range txn.values {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(txn.commit)); err != nil {
			t.Fatal(err)
		}
	}
}

func values(ms []kafka.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, string(m.Value))
	}
	return out
}

// Why committed fetchers read with franz-go: a kafka-go reader set to
// ReadCommitted still hands out the aborted record and the three
// transaction markers as if they were data (segmentio/kafka-go#1332).
func TestKafkaGoHandsOutAbortedRecordsAndMarkers(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, []kafkatest.Topic{{Name: "txn", Partitions: 1}})
	k := newCluster(t, b.Addr)
	transactions(t, k, "txn")
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{b.Addr}, Topic: "txn", Partition: 0, IsolationLevel: kafka.ReadCommitted, MaxWait: 500 * time.Millisecond})
	defer r.Close()
	ctx := servetest.Context(t, 10*time.Second)
	var got []kafka.Message
	for len(got) < 7 {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("after %d messages: %v", len(got), err)
		}
		got = append(got, m)
	}
	if !slices.Contains(values(got), "a1") {
		t.Fatalf("kafka-go no longer returns the aborted record (%q): committed fetchers could use it again", values(got))
	}
}

// A committed fetcher returns the committed records only, no markers, and
// tells how far the markers reach; ReadCommitted reads exactly those.
func TestCommittedReadingSkipsAbortedRecordsAndMarkers(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, []kafkatest.Topic{{Name: "txn", Partitions: 1}})
	k := newCluster(t, b.Addr)
	transactions(t, k, "txn")
	ctx := servetest.Context(t, 20*time.Second)

	bounds, err := k.OffsetsCommitted(ctx, "txn", []int{0})
	if err != nil {
		t.Fatal(err)
	}
	// c1 c2 marker a1 marker c3 marker
	if bounds[0].End != 7 {
		t.Fatalf("last stable offset %d, want 7", bounds[0].End)
	}

	var read []kafka.Message
	if err := k.ReadCommitted(ctx, "txn", []int{0}, func(m kafka.Message) error { read = append(read, m); return nil }); err != nil {
		t.Fatal(err)
	}
	if got := values(read); !slices.Equal(got, []string{"c1", "c2", "c3"}) {
		t.Fatalf("ReadCommitted read %q, want c1 c2 c3", got)
	}

	f, err := k.NewFetcher("txn", map[int]int64{0: kafka.FirstOffset}, kafkaio.FetchOptions{ReadCommitted: true})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var fetched []kafka.Message
	var buf []kafka.Message
	for f.ControlEnd(0) < 7 {
		if buf, err = f.Next(ctx, buf, 100); err != nil {
			t.Fatalf("fetched %q, markers up to %d: %v", values(fetched), f.ControlEnd(0), err)
		}
		fetched = append(fetched, buf...)
	}
	if got := values(fetched); !slices.Equal(got, []string{"c1", "c2", "c3"}) {
		t.Fatalf("committed fetcher returned %q, want c1 c2 c3", got)
	}
}

// ReadCommittedFrom reads the tail after an offset a reader got to before
// (a standby copy's position), says how far it read, and refuses a start
// that the tail cannot complete: past the end (a reset log).
func TestReadCommittedFromReadsTheTailAfterAPosition(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, []kafkatest.Topic{{Name: "txn", Partitions: 1}})
	k := newCluster(t, b.Addr)
	transactions(t, k, "txn") // c1 c2 marker a1 marker c3 marker
	ctx := servetest.Context(t, 20*time.Second)
	for from, want := range map[int64][]string{kafka.FirstOffset: {"c1", "c2", "c3"}, 1: {"c2", "c3"}, 2: {"c3"}, 6: nil, 7: nil} {
		var read []kafka.Message
		ends, err := k.ReadCommittedFrom(ctx, "txn", map[int]int64{0: from}, func(m kafka.Message) error { read = append(read, m); return nil })
		if err != nil {
			t.Fatalf("from %d: %v", from, err)
		}
		if got := values(read); !slices.Equal(got, want) || ends[0] != 7 {
			t.Errorf("from %d: read %q to %d, want %q to 7", from, got, ends[0], want)
		}
	}
	if _, err := k.ReadCommittedFrom(ctx, "txn", map[int]int64{0: 8}, func(kafka.Message) error { return nil }); err == nil || !strings.Contains(err.Error(), "ends at 7 (the log was reset)") {
		t.Errorf("from beyond the end: %v, want an error naming the reset", err)
	}
}

// A committed tailer applies committed records only and is caught up once it
// passed the last marker, though no record sits at the end offset.
func TestCommittedTailerCatchesUpPastTheLastMarker(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, []kafkatest.Topic{{Name: "txn", Partitions: 1}})
	k := newCluster(t, b.Addr)
	transactions(t, k, "txn")
	var mu sync.Mutex
	var applied []kafka.Message
	tl := k.NewTailer("txn", 1, nil, func(_ context.Context, batch []kafka.Message) error {
		mu.Lock()
		defer mu.Unlock()
		applied = append(applied, batch...)
		return nil
	}).ReadCommitted()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tl.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if err := tl.WaitCaughtUp(servetest.Context(t, 10*time.Second)); err != nil {
		t.Fatalf("not caught up (position %v): %v", tl.Position(), err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := values(applied); !slices.Equal(got, []string{"c1", "c2", "c3"}) {
		t.Fatalf("tailer applied %q, want c1 c2 c3", got)
	}
	if pos := tl.Position()[0]; pos != 7 {
		t.Fatalf("tailer position %d, want 7 (past the last marker)", pos)
	}
}
