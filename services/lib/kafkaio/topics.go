package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// TopicWait bounds WaitForTopics.
type TopicWait struct {
	// Timeout is how long to wait in total (default 30s).
	Timeout time.Duration
	// Interval is the pause between attempts (default 1s).
	Interval time.Duration
	// OnWait, when set, is told why each attempt failed (for /healthz).
	OnWait func(reason error)
}

// WaitForTopics waits until every topic exists on the brokers with all its
// partitions led, and returns the partition count of each. Each failed
// attempt is logged with its reason; after Timeout it gives up with an error
// that says what was missing. A part must call it before starting a group
// reader: kafka-go's group reader blocks silently on a missing topic.
func (k *Cluster) WaitForTopics(ctx context.Context, topics []string, w TopicWait) (map[string]int, error) {
	if w.Timeout <= 0 {
		w.Timeout = 30 * time.Second
	}
	if w.Interval <= 0 {
		w.Interval = time.Second
	}
	deadline := time.Now().Add(w.Timeout)
	var last error
	for attempt := 1; ; attempt++ {
		attemptCtx, cancel := context.WithTimeout(ctx, min(5*time.Second, w.Timeout))
		parts, err := k.topicPartitions(attemptCtx, topics)
		cancel()
		if err == nil {
			if attempt > 1 {
				k.log.Info("kafka topics ready", "topics", topics, "attempts", attempt)
			}
			return parts, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		last = err
		if w.OnWait != nil {
			w.OnWait(err)
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return nil, fmt.Errorf("gave up after %s (%d attempts) waiting for kafka topics %s on %s: %w",
				w.Timeout, attempt, strings.Join(topics, ", "), strings.Join(k.cfg.Brokers, ","), last)
		}
		k.log.Warn("waiting for kafka topics", "attempt", attempt, "reason", err.Error(), "gives_up_in", remaining.Round(time.Second).String())
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(w.Interval, remaining)):
		}
	}
}

// topicPartitions asks the brokers for topics and reports the first problem.
func (k *Cluster) topicPartitions(ctx context.Context, topics []string) (map[string]int, error) {
	md, err := k.client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("brokers %s unreachable: %w", strings.Join(k.cfg.Brokers, ","), err)
	}
	found := map[string]kafka.Topic{}
	for _, t := range md.Topics {
		found[t.Name] = t
	}
	parts := map[string]int{}
	var missing []string
	for _, name := range topics {
		t, ok := found[name]
		switch {
		case !ok, errors.Is(t.Error, kafka.UnknownTopicOrPartition), t.Error == nil && len(t.Partitions) == 0:
			missing = append(missing, name)
			continue
		case t.Error != nil:
			return nil, fmt.Errorf("topic %s: %w", name, t.Error)
		}
		for _, p := range t.Partitions {
			if p.Error != nil {
				return nil, fmt.Errorf("topic %s partition %d: %w", name, p.ID, p.Error)
			}
		}
		parts[name] = len(t.Partitions)
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("topic(s) %s do not exist on the brokers (the broker part creates them at start; kafka-go does not auto-create)", strings.Join(missing, ", "))
	}
	return parts, nil
}

// Bounds are the offsets a partition holds: [First, End). End is the high
// watermark, the offset the next record will get.
type Bounds struct{ First, End int64 }

// Offsets returns the bounds of the given partitions of topic.
func (k *Cluster) Offsets(ctx context.Context, topic string, partitions []int) (map[int]Bounds, error) {
	return k.offsets(ctx, topic, partitions, kafka.ReadUncommitted)
}

// OffsetsCommitted is Offsets as a read_committed consumer sees them: End is
// the last stable offset, below the first record of a transaction still
// open (equal to the high watermark when none is).
func (k *Cluster) OffsetsCommitted(ctx context.Context, topic string, partitions []int) (map[int]Bounds, error) {
	return k.offsets(ctx, topic, partitions, kafka.ReadCommitted)
}

// offsets asks for the partitions one after the other. kafka-go sends every
// (partition, first|last) pair of one ListOffsets call as its own request, all
// at once, each on a pooled connection of its own: a call for six partitions
// opened twelve, and TrackLag's call every LagRefresh kept them all in use,
// so a part held a dozen idle connections through its edge proxy (each with
// the proxy's copy buffers and goroutines in the supervisor). One partition
// per call needs two (first and last), and costs a round trip per partition.
func (k *Cluster) offsets(ctx context.Context, topic string, partitions []int, iso kafka.IsolationLevel) (map[int]Bounds, error) {
	out := make(map[int]Bounds, len(partitions))
	for _, p := range partitions {
		res, err := k.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{
			Topics:         map[string][]kafka.OffsetRequest{topic: {kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p)}},
			IsolationLevel: iso,
		})
		if err != nil {
			return nil, fmt.Errorf("list offsets of %s: %w", topic, err)
		}
		for _, po := range res.Topics[topic] {
			if po.Error != nil {
				return nil, fmt.Errorf("list offsets of %s partition %d: %w", topic, po.Partition, po.Error)
			}
			if po.Partition == p {
				out[p] = Bounds{First: po.FirstOffset, End: po.LastOffset}
			}
		}
		if _, ok := out[p]; !ok {
			return nil, fmt.Errorf("list offsets of %s: no answer for partition %d", topic, p)
		}
	}
	return out, nil
}

// AllPartitions lists 0..n-1.
func AllPartitions(n int) []int {
	ps := make([]int, n)
	for i := range ps {
		ps[i] = i
	}
	return ps
}

// LagRefresh is how often consumers refresh their lag from the brokers
// (TrackLag): the gauge is at most this old.
const LagRefresh = 2 * time.Second

// TrackLag sets the lag of topic's partitions from the brokers' end offsets
// every interval until ctx ends, so that an idle partition shows 0 and a
// stuck consumer shows its lag growing (the fetch path only updates lag when
// records arrive). next(p) is the consumer's next offset for p, or a
// negative number for "nothing consumed yet" (lag counts from the first
// offset). When the brokers cannot be asked, the gauges keep their values.
func (k *Cluster) TrackLag(ctx context.Context, topic string, partitions []int, next func(p int) int64, every time.Duration) {
	if len(partitions) == 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, every)
		bounds, err := k.Offsets(qctx, topic, partitions)
		cancel()
		if err == nil {
			for p, b := range bounds {
				n := next(p)
				if n < 0 {
					n = b.First
				}
				k.metrics.SetLag(topic, p, b.End-n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
