package stream

import (
	"context"
	"errors"
	"fmt"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/serve"
	"github.com/ratingslab/lab/services/lib/sqlitedb"
)

// Some failures of a generation are not something rejoining the group can
// fix: a retention gap (kafkaio.RetentionGapError: ratings deleted from the
// log before this processor counted them; every member would resume past the
// hole and undercount for good), a log that ends before the state's offsets
// (the broker's data was reset or truncated), a corrupt database. Retrying
// them every two seconds would hide them behind "recovering"; the processor
// stops instead, and /healthz reports status "failed" with the reason until
// someone rebuilds the state or restores the records.

// haltOnGap stops Run when err is such a permanent failure and reports
// whether it did.
func (p *Processor) haltOnGap(err error) bool {
	if sqlitedb.IsCorrupt(err) {
		err = fmt.Errorf("the database in %s is corrupt: %w (stop the part, remove that directory and restart it to rebuild the state from the log)", p.cfg.DataDir, err)
	} else if !serve.IsPermanent(err) {
		return false
	}
	var gap *kafkaio.RetentionGapError
	if errors.As(err, &gap) {
		p.log.Error("retention gap: ratings were deleted from the log before they were counted; stopping",
			"topic", gap.Topic, "partition", gap.Partition, "next", gap.Next, "log_start", gap.LogStart,
			"uncounted", gap.LogStart-gap.Next)
	} else {
		p.log.Error("stopping: a failure no retry fixes", "error", err.Error())
	}
	err = serve.Permanent(err)
	p.health.set(phaseStopped, err)
	p.halt(err)
	return true
}

// haltedByGap is the permanent failure that stopped Run (nil when it stopped
// for another reason), kept as the health the part reports.
func (p *Processor) haltedByGap(ctx context.Context) error {
	cause := context.Cause(ctx)
	if cause == nil || !serve.IsPermanent(cause) {
		return nil
	}
	p.health.set(phaseStopped, cause)
	return cause
}
