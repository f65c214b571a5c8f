package apachekafka

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/lib/kafkaio/kafkatest"
	"github.com/ratingslab/lab/services/model"
)

// EnsureTopics over the real wire protocol (kfake): missing topics are
// created with the policy, a second run changes nothing, and topics that
// exist with other settings are refused, each difference named.
func TestEnsureTopicsCreatesMissingAndRefusesOthers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b := kafkatest.Start(t, nil)
	c := &kafka.Client{Addr: kafka.TCP(b.Addr), Timeout: 5 * time.Second}
	pol := PolicyFor(1)
	if pol.Replication != 1 || pol.MinISR != 1 || PolicyFor(3) != (TopicPolicy{3, 2}) || PolicyFor(5) != (TopicPolicy{3, 2}) {
		t.Fatalf("policies: %+v %+v", pol, PolicyFor(3))
	}
	created, err := EnsureTopics(ctx, c, model.Topics, pol)
	if err != nil || len(created) != len(model.Topics) {
		t.Fatalf("first run: created %v, %v", created, err)
	}
	if created, err := EnsureTopics(ctx, c, model.Topics, pol); err != nil || len(created) != 0 {
		t.Fatalf("second run: created %v, %v; want nothing and no error", created, err)
	}

	// A cluster whose topics are replicated less than the lab wants.
	_, err = EnsureTopics(ctx, c, model.Topics, PolicyFor(3))
	if err == nil || !strings.Contains(err.Error(), "topic ratings has replication factor 1, the lab wants 3") ||
		!strings.Contains(err.Error(), "min.insync.replicas=1, the lab wants 2") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("wrong replication: %v", err)
	}

	// A topic with the wrong partition count and cleanup policy.
	other := kafkatest.Start(t, []kafkatest.Topic{{Name: model.TopicMovies, Partitions: 3}})
	oc := &kafka.Client{Addr: kafka.TCP(other.Addr), Timeout: 5 * time.Second}
	_, err = EnsureTopics(ctx, oc, model.Topics, pol)
	if err == nil || !strings.Contains(err.Error(), "topic movies has 3 partitions, the lab wants 1") || !strings.Contains(err.Error(), "cleanup.policy=delete, the lab wants compact") {
		t.Fatalf("wrong movies topic: %v", err)
	}
	md, _ := oc.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{model.TopicRatings}})
	if len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) > 0 {
		t.Error("a refused cluster got topics created anyway")
	}
}

func TestBrokersNamesAnUnreachableBootstrap(t *testing.T) {
	_, err := Brokers(context.Background(), []string{"127.0.0.1:1"}, time.Second)
	if err == nil || !strings.Contains(err.Error(), "no broker at 127.0.0.1:1 answered") {
		t.Fatalf("unreachable: %v", err)
	}
}
