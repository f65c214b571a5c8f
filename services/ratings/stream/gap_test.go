package stream

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/ratingslab/lab/services/lib/kafkaio/kafkatest"
	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
)

// Ratings deleted from the log before ratings-stream counted them (here: a
// `ratings` topic with a finite retention, as labs created before
// retention.ms=-1 had, and records imported with old timestamps) are a gap
// the processor must not skip: it stops and reports the gap in its health.
func TestRetentionGapStopsTheProcessorAndIsReported(t *testing.T) {
	t.Parallel()
	for _, d := range []Delivery{EffectivelyOnce, Transactional} {
		t.Run(string(d), func(t *testing.T) { t.Parallel(); retentionGapStops(t, d) })
	}
}

func retentionGapStops(t *testing.T, delivery Delivery) {
	mode := func(c *Config) { c.Delivery = delivery }
	topics := make([]kafkatest.Topic, len(model.Topics))
	for i, tp := range model.Topics {
		tp.Configs = maps.Clone(tp.Configs)
		if tp.Name == model.TopicRatings {
			tp.Configs["retention.ms"] = "86400000" // one day
		}
		topics[i] = tp
	}
	b := kafkatest.Start(t, topics, kfake.GroupMinSessionTimeout(time.Second))
	l := &lab{t: t, broker: b, k: newClient(t, b.Addr)}
	l.movies(5)
	g := newLedger()
	l.ratings(g, 60, 5, 1)
	dir := t.TempDir()
	r := l.start(dir, mode)
	servetest.WaitFor(t, 30*time.Second, "60 ratings counted", func() (bool, string) {
		_, n, err := committedTotal(r.p)
		return err == nil && n == 60, "not yet"
	})
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}

	// Ratings arrive with a 30-day-old timestamp (an import of old
	// records) and retention deletes them before the processor is back.
	var old []kafka.Message
	for i := range 30 {
		ev := model.RatingEvent{RequestID: fmt.Sprintf("old-%d", i), MovieID: int64(1 + i%5), Tenths: 50, UserID: 1,
			EventTime: time.Now().Add(-30 * 24 * time.Hour)}
		m := ratingRecord(ev)
		m.Time = ev.EventTime
		old = append(old, m)
	}
	l.produce(old...)
	b.ApplyRetention()

	r = l.start(dir, mode)
	var ready error
	servetest.WaitFor(t, 30*time.Second, "the gap reported", func() (bool, string) {
		ready = r.p.Ready(context.Background())
		return ready != nil && strings.Contains(ready.Error(), "retention gap"), "Ready: " + errText(ready)
	})
	if !strings.Contains(ready.Error(), "were deleted before they were applied") {
		t.Errorf("the health should say what was lost: %v", ready)
	}
	select {
	case err := <-r.done:
		r.done = nil
		if _, n, _ := committedTotal(r.p); n != 60 {
			t.Errorf("state holds %d ratings after the gap, want the 60 counted before it (nothing past the hole)", n)
		}
		r.p.Close()
		if err == nil || !strings.Contains(err.Error(), "retention gap") {
			t.Errorf("Run returned %v, want the retention gap", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the processor kept running past a retention gap")
	}
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}
