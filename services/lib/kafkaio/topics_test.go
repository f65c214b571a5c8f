package kafkaio_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/kafkatest"
)

func newCluster(t *testing.T, addr string) *kafkaio.Cluster {
	t.Helper()
	k, err := kafkaio.NewCluster(kafkaio.Config{Brokers: []string{addr}, DialTimeout: time.Second}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	return k
}

type reasons struct {
	mu  sync.Mutex
	all []string
}

func (r *reasons) add(err error) { r.mu.Lock(); r.all = append(r.all, err.Error()); r.mu.Unlock() }
func (r *reasons) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.all...)
}

func TestWaitForTopicsGivesUpOnAMissingTopicAndSaysWhich(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, []kafkatest.Topic{{Name: "present", Partitions: 2}})
	k := newCluster(t, b.Addr)
	var why reasons
	_, err := k.WaitForTopics(context.Background(), []string{"present", "absent"},
		kafkaio.TopicWait{Timeout: 600 * time.Millisecond, Interval: 100 * time.Millisecond, OnWait: why.add})
	if err == nil {
		t.Fatal("WaitForTopics succeeded with a missing topic")
	}
	if !strings.Contains(err.Error(), "absent") || !strings.Contains(err.Error(), "gave up") {
		t.Errorf("error should name the missing topic and say it gave up: %v", err)
	}
	if r := why.list(); len(r) < 2 || !strings.Contains(r[0], "absent") {
		t.Errorf("health should have been told why on every attempt, got %q", r)
	}
}

func TestWaitForTopicsReturnsOnceTheTopicAppears(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, nil)
	k := newCluster(t, b.Addr)
	var why reasons
	created := make(chan error, 1)
	go func() {
		// Create the topic only after the first failed attempt was reported.
		deadline := time.Now().Add(10 * time.Second)
		for len(why.list()) == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		created <- b.CreateTopic("late", 4, nil)
	}()
	parts, err := k.WaitForTopics(context.Background(), []string{"late"},
		kafkaio.TopicWait{Timeout: 10 * time.Second, Interval: 50 * time.Millisecond, OnWait: why.add})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-created; err != nil {
		t.Fatal(err)
	}
	if parts["late"] != 4 {
		t.Errorf("partitions = %d, want 4", parts["late"])
	}
}

func TestWaitForTopicsReportsAnUnreachableBroker(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	k := newCluster(t, addr)
	start := time.Now()
	_, err = k.WaitForTopics(context.Background(), []string{"ratings"},
		kafkaio.TopicWait{Timeout: 500 * time.Millisecond, Interval: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("want an unreachable-broker error, got %v", err)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("gave up after %s; the wait is bounded by its timeout", d)
	}
}

// A part asks for its partitions' offsets every LagRefresh (TrackLag). Each
// connection it keeps open to the broker is one more idle connection through
// its edge proxy, so asking about six partitions, again and again, must not
// hold a connection per partition: it opens at most three (metadata, and the
// first and last offset of one partition at a time), however many partitions.
func TestOffsetsOfManyPartitionsHoldAFewConnectionsToTheBroker(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, []kafkatest.Topic{{Name: "wide", Partitions: 6}})
	f := kafkatest.Forward(t, b.Addr)
	k := kafkatest.Client(t, f.Via(b.Addr), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for range 5 {
		bounds, err := k.Offsets(ctx, "wide", kafkaio.AllPartitions(6))
		if err != nil {
			t.Fatal(err)
		}
		if len(bounds) != 6 {
			t.Fatalf("bounds of %d partitions, want 6: %v", len(bounds), bounds)
		}
	}
	// Two requests at once (first and last offset) and the metadata
	// connection make three; kafka-go's pool dialled a fourth in about half
	// of the runs (-race, -count=60: 3 or 4, never more). One connection per
	// partition and offset, as before, was 11 here.
	if n := f.Accepted(); n > 4 {
		t.Errorf("asking for the offsets of 6 partitions 5 times opened %d connections to the broker, want at most 4", n)
	}
}
