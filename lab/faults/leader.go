package faults

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/lab/parts"
)

// leaderEffect kills the broker that leads one partition of a topic: a
// leader failover. Which broker that is can only be known when the fault
// is applied (leaders move), so the target is the topic and the broker is
// resolved from metadata, then killed and started again like `kill`.
type leaderEffect struct {
	brokerKill
	brokers   []string
	topic     string
	partition int // -1: the partition holding the most records
}

func (e *leaderEffect) apply(ctx context.Context) error {
	if len(e.brokers) == 0 {
		return errors.New("no broker address to read the leaders from")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, done := injectorClient(e.brokers)
	defer done()
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{e.topic}})
	if err != nil {
		return fmt.Errorf("metadata of %s: %w", e.topic, err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil || len(md.Topics[0].Partitions) == 0 {
		return fmt.Errorf("topic %s is not on the brokers", e.topic)
	}
	ps := md.Topics[0].Partitions
	p := e.partition
	if p < 0 {
		if p, err = busiestPartition(ctx, c, e.topic, len(ps)); err != nil {
			return err
		}
	}
	if p >= len(ps) {
		return fmt.Errorf("params.partition: %s has partitions 0..%d, not %d", e.topic, len(ps)-1, p)
	}
	var leader kafka.Broker
	for _, pp := range ps {
		if pp.ID == p {
			leader = pp.Leader
		}
	}
	if leader.Host == "" {
		return fmt.Errorf("%s/%d has no leader right now", e.topic, p)
	}
	part := e.brokerPart(leader.ID, len(md.Brokers))
	return e.killPart(ctx, part, fmt.Sprintf("%s, the leader of %s/%d", part, e.topic, p))
}

// brokerKill kills a broker part found when a fault is applied (a
// partition's leader, a group's coordinator) and starts it again when the
// fault heals, like `kill`.
type brokerKill struct {
	kill     processEffect
	embedded bool   // the lab's Kafka is the embedded broker: one part, whatever its nodes
	chosen   string // "broker-2, the leader of ratings/4", once applied
}

func (b *brokerKill) killPart(ctx context.Context, part, chosen string) error {
	b.kill.part, b.chosen = part, chosen
	return b.kill.apply(ctx)
}

func (b *brokerKill) heal(ctx context.Context, shutdown bool) error {
	if b.kill.part == "" {
		return nil
	}
	return b.kill.heal(ctx, shutdown)
}

// outcome names the broker the fault hit (the journal's fault timeline
// shows it).
func (b *brokerKill) outcome() string { return "killed " + b.chosen }

// injectorClient asks the lab's Kafka directly (never through an edge).
// Call done when finished: a kafka.Transport refreshes the metadata of
// every cluster it has reached, every MetadataTTL, until it is closed.
func injectorClient(brokers []string) (c *kafka.Client, done func()) {
	tr := &kafka.Transport{DialTimeout: 2 * time.Second, ClientID: "lab-fault-injector", MetadataTTL: time.Second}
	return &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second, Transport: tr}, tr.CloseIdleConnections
}

// brokerPart is the part that runs broker id of a Kafka of n brokers: the
// embedded broker runs all its nodes in the one part "broker".
func (b *brokerKill) brokerPart(id, n int) string {
	if b.embedded || n == 1 {
		return "broker"
	}
	return parts.KafkaNodeName(int32(id))
}

// busiestPartition is the partition of topic with the most records.
func busiestPartition(ctx context.Context, c *kafka.Client, topic string, n int) (int, error) {
	reqs := make([]kafka.OffsetRequest, 0, 2*n)
	for p := range n {
		reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	res, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return 0, fmt.Errorf("offsets of %s: %w", topic, err)
	}
	best, most := 0, int64(-1)
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			return 0, fmt.Errorf("offsets of %s/%d: %w", topic, po.Partition, po.Error)
		}
		if n := po.LastOffset - po.FirstOffset; n > most {
			best, most = po.Partition, n
		}
	}
	return best, nil
}

// leaderPartition reads the partition parameter (-1: busiest).
func leaderPartition(ps Params) int {
	n, err := strconv.Atoi(ps["partition"])
	if err != nil {
		return -1
	}
	return n
}
