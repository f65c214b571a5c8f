package kafkaio

import (
	"context"
	"errors"
	"strings"

	"github.com/segmentio/kafka-go"
)

// ErrorName is a bounded name for a produce or fetch error, for metric
// labels and logs: the Kafka protocol error's name (NOT_ENOUGH_REPLICAS,
// NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT, ...), "timeout" when the
// caller's deadline ran out, "network" for a connection that failed, and
// "other" for anything else.
func ErrorName(err error) string {
	var ke kafka.Error
	if errors.As(err, &ke) {
		return strings.ToUpper(strings.NewReplacer(" ", "_", "-", "_").Replace(ke.Title()))
	}
	var werrs kafka.WriteErrors
	if errors.As(err, &werrs) {
		for _, e := range werrs {
			if e != nil {
				return ErrorName(e)
			}
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "timeout"
	case strings.Contains(err.Error(), "connection refused"), strings.Contains(err.Error(), "connection reset"),
		strings.Contains(err.Error(), "broken pipe"), strings.Contains(err.Error(), "EOF"), strings.Contains(err.Error(), "i/o timeout"):
		return "network"
	}
	return "other"
}
