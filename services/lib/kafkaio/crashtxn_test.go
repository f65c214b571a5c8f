package kafkaio_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ratingslab/lab/services/lib/kafkaio/kafkatest"
	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
)

// A broker killed while a transaction is open aborts it when it starts
// again, and the embedded broker writes no marker for it: the partition's
// last offsets hold records a committed reader is never given.
// ReadCommitted still ends (it once waited for a record at end-1 until its
// context ended: the changelog restore that never finished after the
// kills-under-load torture).
func TestReadCommittedEndsAfterABrokerCrashWithATransactionOpen(t *testing.T) {
	t.Parallel()
	b := kafkatest.StartDurable(t)
	k := newCluster(t, b.Addr)
	topic := model.TopicRatingsChangelog
	txn := func(values []string, end bool, commit bool) {
		t.Helper()
		ctx := servetest.Context(t, 20*time.Second)
		cl, err := kgo.NewClient(k.FranzOpts(kgo.TransactionalID("crash-test"), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, v := range values {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Key: []byte(v), Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if end {
			if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
				t.Fatal(err)
			}
		}
	}
	read := func() []string {
		t.Helper()
		ctx := servetest.Context(t, 15*time.Second)
		var got []kafka.Message
		if err := k.ReadCommitted(ctx, topic, []int{0}, func(m kafka.Message) error { got = append(got, m); return nil }); err != nil {
			t.Fatalf("ReadCommitted after reading %q: %v", values(got), err)
		}
		return values(got)
	}

	txn([]string{"c1"}, true, true)
	txn([]string{"open1", "open2"}, false, false) // the writer dies with it open
	b.Crash(t)
	b.Start(t)
	if got := read(); !slices.Equal(got, []string{"c1"}) {
		t.Fatalf("after the crash: read %q, want c1", got)
	}
	// The broker wrote the abort marker the crash left out
	// (services/lib/kafkaio/embedded/crashtxns.go): the next owner's commit is read.
	txn([]string{"c2"}, true, true)
	if got := read(); !slices.Equal(got, []string{"c1", "c2"}) {
		t.Fatalf("after a commit by the next owner: read %q, want c1 c2", got)
	}
}

// A committed read that cannot finish ends with its context and says what
// it waited for: each partition's position and end, and the last failure.
func TestReadCommittedThatCannotFinishNamesWhatItWaitedFor(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, []kafkatest.Topic{{Name: "txn", Partitions: 1}})
	k := newCluster(t, b.Addr)
	transactions(t, k, "txn")
	b.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Topic: "txn", Err: kerr.KafkaStorageError, Count: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	began := time.Now()
	err := k.ReadCommitted(ctx, "txn", []int{0}, func(kafka.Message) error { return nil })
	if err == nil {
		t.Fatal("ReadCommitted ended without error while every fetch failed")
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("ReadCommitted took %s past its 2s context", took)
	}
	for _, want := range []string{"partition 0 at offset 0 of 7", "KAFKA_STORAGE_ERROR", context.DeadlineExceeded.Error()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
