package kafkaio_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/kafkatest"
)

// A table (the webserver's view, a movies table) whose stored position lies
// below the log start refuses to resume: the records in between were never
// applied and are gone.
func TestTailerRefusesToResumePastARetentionGap(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, []kafkatest.Topic{{Name: "table", Partitions: 1, Configs: map[string]string{"retention.ms": "86400000"}}})
	k := newCluster(t, b.Addr)
	w := k.Writer("table", kafkaio.WriterOptions{})
	defer w.Close()
	var msgs []kafka.Message
	for i := range 10 {
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprint(i)), Value: []byte("v"), Time: time.Now().Add(-48 * time.Hour)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Write(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	b.ApplyRetention() // the log now starts at 10

	applied := 0
	tl := k.NewTailer("table", 1, map[int]int64{0: 4}, func(context.Context, []kafka.Message) error { applied++; return nil })
	err := tl.Run(ctx)
	var gap *kafkaio.RetentionGapError
	if !errors.As(err, &gap) || gap.Next != 4 || gap.LogStart != 10 || gap.Partition != 0 {
		t.Fatalf("Run from offset 4 over a log starting at 10: %v, want a retention gap 4..9", err)
	}
	if applied != 0 {
		t.Errorf("applied %d batches past the gap", applied)
	}

	// A table that starts from the beginning has no gap: it reads what the log holds.
	fresh := k.NewTailer("table", 1, nil, func(context.Context, []kafka.Message) error { return nil })
	rctx, stop := context.WithTimeout(ctx, 500*time.Millisecond)
	defer stop()
	if err := fresh.Run(rctx); err != nil {
		t.Errorf("a table read from the beginning: %v, want no gap", err)
	}
}

// A table whose stored position lies past the end of the log (the broker's
// data was wiped, or the topic created again, while the table's SQLite file
// kept its offsets) refuses to resume: new records below the stored offset
// would be skipped without a word.
func TestTailerRefusesToResumeOnALogThatWasReset(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, []kafkatest.Topic{{Name: "table", Partitions: 2}})
	k := newCluster(t, b.Addr)
	w := k.Writer("table", kafkaio.WriterOptions{})
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Write(ctx, kafka.Message{Partition: 1, Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}

	applied := 0
	// Partition 0 is at its end (0) and fine; partition 1 holds one record (end 1) but the table says 7.
	tl := k.NewTailer("table", 2, map[int]int64{0: 0, 1: 7}, func(context.Context, []kafka.Message) error { applied++; return nil })
	err := tl.Run(ctx)
	var reset *kafkaio.LogResetError
	if !errors.As(err, &reset) || reset.Partition != 1 || reset.Next != 7 || reset.End != 1 {
		t.Fatalf("Run from offset 7 over a log ending at 1: %v, want a log reset on partition 1", err)
	}
	if applied != 0 {
		t.Errorf("applied %d batches on a reset log", applied)
	}
}
