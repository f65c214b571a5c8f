package faults

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// coordinatorEffect kills the broker that coordinates a consumer group: a
// coordinator failover on a cluster (another broker takes the group over,
// its members rediscover it and rejoin). As with kill_leader, the broker is
// found when the fault is applied, then killed and started again like
// `kill`. On the embedded broker it is a broker outage; coordinator_move is
// the embedded broker's own, protocol-level version.
type coordinatorEffect struct {
	brokerKill
	brokers []string
	group   string
}

func (e *coordinatorEffect) apply(ctx context.Context) error {
	if len(e.brokers) == 0 {
		return errors.New("no broker address to find the coordinator with")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, done := injectorClient(e.brokers)
	defer done()
	res, err := c.FindCoordinator(ctx, &kafka.FindCoordinatorRequest{Key: e.group, KeyType: kafka.CoordinatorKeyTypeConsumer})
	if err == nil {
		err = res.Error
	}
	if err != nil {
		return fmt.Errorf("find the coordinator of group %s: %w", e.group, err)
	}
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	part := e.brokerPart(res.Coordinator.NodeID, len(md.Brokers))
	return e.killPart(ctx, part, fmt.Sprintf("%s, the coordinator of %s", part, e.group))
}
