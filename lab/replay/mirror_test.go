package replay

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/serve"
	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// The mirror copies ratings from its group's position and the whole movies
// table into another broker, each record on its partition with its key,
// value, headers and timestamp, and keeps copying what arrives.
func TestMirrorCopiesFromTheGroupPosition(t *testing.T) {
	live, fork := newTestBroker(t), newTestBroker(t)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	live.ratings("old-", 120, 20, base)
	cut := base.Add(time.Hour / 2)
	var recent []kafka.Message
	for i := range 90 {
		m := rating(fmt.Sprintf("new-%d", i), int64(i%20+1), 55, cut.Add(time.Duration(i)*time.Millisecond))
		m.Headers = []kafka.Header{{Key: "trace", Value: []byte(fmt.Sprint(i))}}
		recent = append(recent, m)
	}
	live.produce(model.TopicRatings, recent...)
	live.produce(model.TopicMovies, kafka.Message{Partition: 0, Key: []byte("1"), Value: []byte(`{"movie_id":1,"title":"One"}`), Time: base})
	ctx := servetest.Context(t, 60*time.Second)
	plan, err := PlanReset(ctx, live.k, ResetRequest{Group: "fork-t", Topic: model.TopicRatings, Strategy: Strategy{Kind: ToDatetime, Time: cut}})
	if err != nil {
		t.Fatal(err)
	}
	if err := ExecuteReset(ctx, live.k, plan); err != nil {
		t.Fatal(err)
	}

	addr, adminAddr := freeAddr(t), freeAddr(t)
	mctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- RunMirror(mctx, MirrorConfig{Source: kafkaio.Config{Brokers: live.k.Config().Brokers}, Target: fork.broker.Addr,
			Group: "fork-t", Listen: serve.Listen{Public: addr, Admin: adminAddr}, Log: testLog()})
	}()
	t.Cleanup(func() { stop(); <-done })

	want := map[int]int{}
	for _, m := range recent {
		want[m.Partition]++
	}
	servetest.Eventually(t, 30*time.Second, "the recent ratings in the fork's broker", func() error {
		b, err := fork.k.Offsets(ctx, model.TopicRatings, allPartitions(model.RatingsPartitions))
		if err != nil {
			return err
		}
		for p := range model.RatingsPartitions {
			if got := int(b[p].End); got != want[p] {
				return fmt.Errorf("partition %d holds %d, want %d", p, got, want[p])
			}
		}
		return nil
	})
	var got []Record
	for p := range model.RatingsPartitions {
		if err := scanRange(ctx, fork.k, model.TopicRatings, p, 0, int64(want[p]), func(r Record) error { got = append(got, r); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	byID := map[string]kafka.Message{}
	for _, m := range recent {
		byID[string(m.Headers[0].Value)] = m
	}
	for _, r := range got {
		if len(r.Headers) != 1 {
			t.Fatalf("copied record without its header: %+v", r)
		}
		m := byID[string(r.Headers[0].Value)]
		if r.Partition != m.Partition || !bytes.Equal(r.Key, m.Key) || !bytes.Equal(r.Value, m.Value) || !r.Time.Equal(m.Time) {
			t.Fatalf("copy %+v differs from the original %+v", r, m)
		}
	}
	mb, err := fork.k.Offsets(ctx, model.TopicMovies, []int{0})
	if err != nil || mb[0].End != 1 {
		t.Fatalf("movies in the fork: %+v %v, want the table's one record", mb, err)
	}

	// New ratings follow.
	live.produce(model.TopicRatings, rating("later", 3, 90, time.Now()))
	servetest.Eventually(t, 30*time.Second, "a new rating copied", func() error {
		b, err := fork.k.Offsets(ctx, model.TopicRatings, allPartitions(model.RatingsPartitions))
		if err != nil {
			return err
		}
		var n int64
		for _, x := range b {
			n += x.End
		}
		if n != int64(len(recent)+1) {
			return fmt.Errorf("%d copied", n)
		}
		return nil
	})
	resp, err := http.Get("http://" + adminAddr + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("mirror /healthz: %v %v", resp, err)
	}
	resp.Body.Close()
}
