package lag_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/lab/lag"
	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/kafkatest"
	"github.com/ratingslab/lab/services/lib/kafkaio/positions"
	"github.com/ratingslab/lab/services/lib/sqlitedb"
	"github.com/ratingslab/lab/services/model"
)

// store is a consumer's SQLite store with the offsets table, as
// ratings-stream keeps it.
func store(t *testing.T, pos map[int]int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ratings-stream.db")
	db, err := sqlitedb.Open(path, sqlitedb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(positions.Schema); err != nil {
		t.Fatal(err)
	}
	for p, n := range pos {
		if _, err := db.Exec(positions.UpsertSQL, model.TopicRatings, p, n); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func TestLagIsEndOffsetsMinusTheDurablePositionOrUnknown(t *testing.T) {
	b := kafkatest.Start(t, kafkatest.LabTopics)
	direct := kafkatest.Client(t, kafkaio.Config{Brokers: []string{b.Addr}}, nil)
	w := direct.Writer(model.TopicRatings, kafkaio.WriterOptions{})
	var msgs []kafka.Message
	for i := range 60 {
		msgs = append(msgs, kafka.Message{Key: fmt.Appendf(nil, "%d", i%7+1), Value: []byte("{}")})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Write(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()
	bounds, err := direct.Offsets(ctx, model.TopicRatings, kafkaio.AllPartitions(6))
	if err != nil {
		t.Fatal(err)
	}

	// Two replicas: one has consumed partition 0 to its end, the other a
	// stale part of it and half of partition 1; nobody has recorded 2..5.
	r1 := store(t, map[int]int64{0: bounds[0].End})
	r2 := store(t, map[int]int64{0: 1, 1: bounds[1].End / 2})
	m := &lag.Meter{Broker: direct, Topic: model.TopicRatings, Partitions: 6,
		Position: lag.StoreFiles{Name: "ratings-stream", Topic: model.TopicRatings, Paths: func() []string { return []string{r1, r2} }}}
	l := m.Measure(ctx)
	if !l.Known() {
		t.Fatal(l.Err)
	}
	var want int64
	for p := 2; p < 6; p++ {
		want += bounds[p].End
	}
	want += bounds[1].End - bounds[1].End/2
	if l.Total != want || l.ByPartition[0] != 0 {
		t.Errorf("lag %d (%s), want %d with partition 0 caught up (the most advanced replica wins)", l.Total, lag.FormatPartitions(l.ByPartition), want)
	}

	// Either side unreadable: unknown, with the reason — never a number.
	gone := &lag.Meter{Broker: direct, Topic: model.TopicRatings, Partitions: 6,
		Position: lag.StoreFiles{Name: "ratings-stream", Topic: model.TopicRatings, Paths: func() []string { return []string{filepath.Join(t.TempDir(), "missing.db")} }}}
	if l := gone.Measure(ctx); l.Known() || !strings.Contains(l.Err.Error(), "ratings-stream's stored offsets") {
		t.Errorf("a missing store: %+v, want unknown naming the store", l)
	}
	b.Close()
	down := kafkatest.Client(t, kafkaio.Config{Brokers: []string{b.Addr}, DialTimeout: 200 * time.Millisecond}, nil)
	m.Broker = down
	short, cancel2 := context.WithTimeout(context.Background(), 800*time.Millisecond)
	defer cancel2()
	if l := m.Measure(short); l.Known() || !strings.Contains(l.Err.Error(), "broker end offsets") {
		t.Errorf("the broker down: %+v, want unknown naming the broker", l)
	}
}

func TestGroupOffsetsAreACommittedPosition(t *testing.T) {
	b := kafkatest.Start(t, kafkatest.LabTopics)
	client := &kafka.Client{Addr: kafka.TCP(b.Addr), Timeout: 5 * time.Second}
	g := lag.GroupOffsets{Client: client, Group: "nobody", Topic: model.TopicRatings, Partitions: 6}
	pos, err := g.Positions(context.Background())
	if err != nil || len(pos) != 0 {
		t.Errorf("a group that never committed: %v %v, want no positions", pos, err)
	}
}
