package chaos

import (
	"fmt"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/lab/audit"
	"github.com/ratingslab/lab/lab/lag"
	"github.com/ratingslab/lab/lab/sampler"
	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/variantname"
	"github.com/ratingslab/lab/services/model"
)

// The durable position of ratings-stream depends on its delivery mode: its
// SQLite stores in effectively-once mode (the default), the group's
// committed offsets in every other (at-least-once; a transactional mode
// commits there too).
const (
	deliveryEffectivelyOnce = "effectively-once"
	ratingsStreamGroup      = "ratings-stream"
)

// logsOf is what the sampler reads of the log variant from outside its
// processes: consumer lag and dead letters over a direct broker
// connection, the durable position from where ratings-stream records it.
// It returns the description of the lag for the journal.
func logsOf(p *Plan, env Env) ([]sampler.Log, string, func(), error) {
	if !slices.Contains(p.Variants, variantname.Stream) || len(env.Brokers) == 0 {
		return nil, "", func() {}, nil
	}
	direct, err := kafkaio.NewCluster(kafkaio.Config{Brokers: env.Brokers, ClientID: "lab-sampler", DialTimeout: 500 * time.Millisecond}, nil, nil)
	if err != nil {
		return nil, "", nil, fmt.Errorf("brokers for the lag: %w", err)
	}
	partitions := partitionsOf(model.TopicRatings)
	var pos lag.Positions = lag.StoreFiles{Name: "ratings-stream", Topic: model.TopicRatings,
		Paths: func() []string { return audit.StreamStorePaths(env.Dir) }}
	if d := env.Settings["delivery"]; d != "" && d != deliveryEffectivelyOnce {
		pos = lag.GroupOffsets{Client: &kafka.Client{Addr: kafka.TCP(env.Brokers...), Timeout: time.Second},
			Group: ratingsStreamGroup, Topic: model.TopicRatings, Partitions: partitions}
	}
	m := &lag.Meter{Broker: direct, Topic: model.TopicRatings, Partitions: partitions, Position: pos}
	log := sampler.Log{Variant: variantname.Stream, Lag: m, Broker: direct,
		DLQ: model.TopicRatingsDLQ, DLQPartitions: partitionsOf(model.TopicRatingsDLQ)}
	return []sampler.Log{log}, m.Describe(), direct.Close, nil
}

// partitionsOf is a lab topic's partition count (model.Topics).
func partitionsOf(topic string) int {
	for _, t := range model.Topics {
		if t.Name == topic {
			return int(t.Partitions)
		}
	}
	return 1
}
