package stream

import (
	"context"
	"errors"

	"github.com/ratingslab/lab/services/kafkaio"
)

// A retention gap (kafkaio.RetentionGapError: ratings deleted from the log
// before this processor counted them) is not something rejoining the group
// can fix: every member would resume past the hole and undercount for good.
// The processor stops, and /healthz names the gap until someone rebuilds the
// state or restores the records.

// haltOnGap stops Run when err is a retention gap and reports whether it did.
func (p *Processor) haltOnGap(err error) bool {
	var gap *kafkaio.RetentionGapError
	if !errors.As(err, &gap) {
		return false
	}
	p.log.Error("retention gap: ratings were deleted from the log before they were counted; stopping",
		"topic", gap.Topic, "partition", gap.Partition, "next", gap.Next, "log_start", gap.LogStart,
		"uncounted", gap.LogStart-gap.Next)
	p.health.set("stopped", err)
	p.halt(err)
	return true
}

// haltedByGap is the gap that stopped Run (nil when it stopped for another
// reason), kept as the health the part reports.
func (p *Processor) haltedByGap(ctx context.Context) error {
	cause := context.Cause(ctx)
	var gap *kafkaio.RetentionGapError
	if !errors.As(cause, &gap) {
		return nil
	}
	p.health.set("stopped", cause)
	return cause
}
