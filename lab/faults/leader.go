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
	brokers   []string
	topic     string
	partition int // -1: the partition holding the most records
	kill      processEffect
	chosen    string // "broker-2, the leader of ratings/4", once applied
}

func (e *leaderEffect) apply(ctx context.Context) error {
	if len(e.brokers) == 0 {
		return errors.New("no broker address to read the leaders from")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(e.brokers...), Timeout: 5 * time.Second,
		Transport: &kafka.Transport{DialTimeout: 2 * time.Second, ClientID: "lab-fault-injector", MetadataTTL: time.Second}}
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
	part := parts.KafkaNodeName(int32(leader.ID))
	if len(md.Brokers) == 1 {
		part = "broker" // the embedded broker leads everything
	}
	e.kill.part = part
	e.chosen = fmt.Sprintf("%s, the leader of %s/%d", part, e.topic, p)
	return e.kill.apply(ctx)
}

func (e *leaderEffect) heal(ctx context.Context, shutdown bool) error {
	if e.kill.part == "" {
		return nil
	}
	return e.kill.heal(ctx, shutdown)
}

// outcome names the broker the fault hit (the journal's fault timeline
// shows it).
func (e *leaderEffect) outcome() string { return "killed " + e.chosen }

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
