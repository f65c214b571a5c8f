package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/segmentio/kafka-go"
)

func TestErrorNameIsTheKafkaErrorName(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("produce to ratings: %w", kafka.NotEnoughReplicas), "NOT_ENOUGH_REPLICAS"},
		{kafka.WriteErrors{nil, kafka.RequestTimedOut}, "REQUEST_TIMED_OUT"},
		{kafka.NotLeaderForPartition, "NOT_LEADER_FOR_PARTITION"},
		{fmt.Errorf("write: %w", context.DeadlineExceeded), "timeout"},
		{errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), "network"},
		{errors.New("something else"), "other"},
	} {
		if got := ErrorName(c.err); got != c.want {
			t.Errorf("ErrorName(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
