package apachekafka

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/model"
)

// NodeReady is a cluster node's health: the node at addr answers a
// metadata request itself, lists itself as broker id, every lab topic
// exists with all its partitions, and the node is in the ISR of every
// partition it replicates. A node that just came back is unhealthy until
// it has caught up.
//
// The probe runs every few hundred milliseconds for the life of the lab, so
// its transport is closed after each: a kafka.Transport keeps refreshing
// the metadata of every cluster it has reached until CloseIdleConnections,
// and one left open per probe once made a supervisor send thousands of
// metadata requests a second to the cluster it watched.
func NodeReady(ctx context.Context, addr string, id int32, topics []model.Topic) error {
	tr := &kafka.Transport{DialTimeout: time.Second, ClientID: "lab-probe", MetadataTTL: time.Second}
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 2 * time.Second, Transport: tr}
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t.Name
	}
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
	if err != nil {
		return fmt.Errorf("metadata from %s: %w", addr, err)
	}
	if !slices.ContainsFunc(md.Brokers, func(b kafka.Broker) bool { return b.ID == int(id) }) {
		return fmt.Errorf("node %d is not registered with the cluster yet", id)
	}
	found := map[string]kafka.Topic{}
	for _, t := range md.Topics {
		found[t.Name] = t
	}
	for _, want := range topics {
		t, ok := found[want.Name]
		if !ok || t.Error != nil || len(t.Partitions) != int(want.Partitions) {
			return fmt.Errorf("topic %s not ready (%d of %d partitions)", want.Name, len(t.Partitions), want.Partitions)
		}
		for _, p := range t.Partitions {
			replica := slices.ContainsFunc(p.Replicas, func(b kafka.Broker) bool { return b.ID == int(id) })
			inSync := slices.ContainsFunc(p.Isr, func(b kafka.Broker) bool { return b.ID == int(id) })
			if replica && !inSync {
				return fmt.Errorf("node %d is not in the ISR of %s/%d yet (isr %v)", id, want.Name, p.ID, brokerIDs(p.Isr))
			}
		}
	}
	return nil
}

func brokerIDs(bs []kafka.Broker) []int {
	out := make([]int, len(bs))
	for i, b := range bs {
		out[i] = b.ID
	}
	return out
}

// WaitBrokers waits (bounded) until metadata from any of bootstrap lists
// at least n brokers.
func WaitBrokers(ctx context.Context, bootstrap []string, n int, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	var last error
	for {
		bs, err := Brokers(ctx, bootstrap, 2*time.Second)
		if err == nil && len(bs) >= n {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("%d of %d brokers registered", len(bs), n)
		}
		last = err
		if time.Now().After(deadline) {
			return fmt.Errorf("the cluster did not form within %s: %w", bound, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
