package kafkaio_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/kafkatest"
	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
)

// keysIn reads every record of topic (all partitions) and counts its keys.
func keysIn(t *testing.T, b *kafkatest.Broker, topic string, partitions int) map[string]int {
	t.Helper()
	out := map[string]int{}
	for p := range partitions {
		conn, err := kafka.DialLeader(context.Background(), "tcp", b.Addr, topic, p)
		if err != nil {
			t.Fatal(err)
		}
		last, err := conn.ReadLastOffset()
		if err != nil {
			t.Fatal(err)
		}
		conn.Close()
		if last == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{b.Addr}, Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond})
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			m, err := r.ReadMessage(ctx)
			cancel()
			if err != nil {
				t.Fatalf("read %s[%d]: %v", topic, p, err)
			}
			if p != model.RatingPartition(m.Key, partitions) {
				t.Errorf("key %s on partition %d, want the CRC32 partition", m.Key, p)
			}
			out[string(m.Key)]++
			if m.Offset+1 >= last {
				break
			}
		}
		r.Close()
	}
	return out
}

func TestOnceProducerAcknowledgesEveryRecordOnce(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, kafkatest.LabTopics)
	k := kafkatest.Client(t, kafkaio.Config{Brokers: []string{b.Addr}}, nil)
	p := k.OnceProducer(model.TopicRatings, 6, kafkaio.OnceOptions{})
	defer p.Close()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range 300 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := p.Produce(ctx, fmt.Appendf(nil, "%d", i+1), []byte("{}")); err != nil {
				failed.Add(1)
				t.Errorf("record %d: %v", i+1, err)
			}
		})
	}
	wg.Wait()
	got := keysIn(t, b, model.TopicRatings, 6)
	if len(got) != 300 {
		t.Errorf("%d distinct keys in the log, want 300", len(got))
	}
	for k, n := range got {
		if n != 1 {
			t.Errorf("key %s appended %d times", k, n)
		}
	}
}

// A broker slower than the callers' deadline appends after they gave up:
// they must hear "unknown", never "failed", and the record must land once
// (its one request), not again later.
func TestOnceProducerSaysUnknownWhenTheAnswerIsLate(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, kafkatest.LabTopics)
	var delayed atomic.Int64
	b.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		b.KeepControl()
		if delayed.Add(1) == 1 {
			time.Sleep(600 * time.Millisecond) // then let the broker append it
		}
		return nil, nil, false
	})
	k := kafkatest.Client(t, kafkaio.Config{Brokers: []string{b.Addr}}, nil)
	p := k.OnceProducer(model.TopicRatings, 6, kafkaio.OnceOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	err := p.Produce(ctx, []byte("7"), []byte("{}"))
	cancel()
	// Close returns once the producer's senders did: whatever it would
	// retry in the background has been sent by then.
	p.Close()
	if !kafkaio.IsOutcomeUnknown(err) {
		t.Fatalf("a produce answered after the deadline: %v, want outcome unknown", err)
	}
	// The broker appends the late request's record once its delay ends;
	// a retry sent before Close is handled after it.
	n := 0
	servetest.WaitFor(t, 10*time.Second, "the late record in the log", func() (bool, string) {
		n = keysIn(t, b, model.TopicRatings, 6)["7"]
		return n > 0, fmt.Sprintf("%d times", n)
	})
	if n != 1 || delayed.Load() != 1 {
		t.Errorf("the late record is in the log %d times after %d produce requests, want once after one (no background retry)", n, delayed.Load())
	}
}

// A refusal by the broker is definite: the caller hears "failed" and the
// record is not in the log. A retriable refusal is retried within the
// deadline.
func TestOnceProducerRefusalsAreDefinite(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, kafkatest.LabTopics)
	var refusals atomic.Int64
	refuse := atomic.Int64{}
	refuse.Store(1)
	b.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		b.KeepControl()
		if refusals.Load() >= refuse.Load() {
			return nil, nil, false
		}
		refusals.Add(1)
		r := req.(*kmsg.ProduceRequest)
		resp := r.ResponseKind().(*kmsg.ProduceResponse)
		for _, tp := range r.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic = tp.Topic
			for _, pp := range tp.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = pp.Partition
				rp.ErrorCode = int16(kafka.NotEnoughReplicas)
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
	k := kafkatest.Client(t, kafkaio.Config{Brokers: []string{b.Addr}}, nil)
	p := k.OnceProducer(model.TopicRatings, 6, kafkaio.OnceOptions{Attempts: 3, Backoff: 10 * time.Millisecond})
	defer p.Close()
	produce := func(key string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return p.Produce(ctx, []byte(key), []byte("{}"))
	}
	if err := produce("1"); err != nil {
		t.Errorf("one retriable refusal, then accepted: %v, want acknowledged", err)
	}
	refusals.Store(0)
	refuse.Store(100)
	err := produce("2")
	if err == nil || kafkaio.IsOutcomeUnknown(err) || refusals.Load() != 3 {
		t.Errorf("refused on every attempt: %v after %d requests, want a definite error after 3", err, refusals.Load())
	}
	refuse.Store(0)
	got := keysIn(t, b, model.TopicRatings, 6)
	if got["1"] != 1 || got["2"] != 0 {
		t.Errorf("log holds %v, want key 1 once and never key 2", got)
	}
}

// With the broker's proxy cut, nothing is certain but what the broker
// refused; whatever a caller was told, nothing arrives after the heal that
// was not already on its way (no background retries).
func TestOnceProducerNeverRetriesInTheBackground(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, kafkatest.LabTopics)
	f := kafkatest.Forward(t, b.Addr)
	k := kafkatest.Client(t, f.Via(b.Addr), nil)
	p := k.OnceProducer(model.TopicRatings, 6, kafkaio.OnceOptions{})
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if err := p.Produce(ctx, []byte("1"), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	cancel()
	f.Cut()
	var definite []string
	for i := 2; i <= 20; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		err := p.Produce(ctx, fmt.Appendf(nil, "%d", i), []byte("{}"))
		cancel()
		switch {
		case err == nil:
			t.Errorf("record %d acknowledged through a cut proxy", i)
		case !kafkaio.IsOutcomeUnknown(err):
			definite = append(definite, fmt.Sprint(i))
		}
		if err != nil && errors.Is(err, context.Canceled) {
			t.Errorf("record %d: %v", i, err)
		}
	}
	f.Heal()
	time.Sleep(time.Second)
	got := keysIn(t, b, model.TopicRatings, 6)
	if len(got) != 1 || got["1"] != 1 {
		t.Errorf("after the heal the log holds %v, want only record 1: nothing sent through a cut proxy arrives later", got)
	}
	t.Logf("definite failures: %v", definite)
}
