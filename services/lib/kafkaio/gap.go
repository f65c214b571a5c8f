package kafkaio

import (
	"context"
	"fmt"
	"slices"
)

// RetentionGapError says that records a consumer had not applied yet were
// deleted from the log (retention, DeleteRecords, a trimmed data dir): its
// next offset is below the partition's log start. Resuming from the log
// start would silently undercount, so a consumer that meets one stops and
// reports it instead.
type RetentionGapError struct {
	Topic     string
	Partition int
	Next      int64 // the consumer's next offset to apply
	LogStart  int64 // the first offset the partition still holds
}

func (e *RetentionGapError) Error() string {
	return fmt.Sprintf("retention gap on %s partition %d: the next offset to apply is %d but the log now starts at %d, "+
		"so %d record(s) (offsets %d..%d) were deleted before they were applied; stopped rather than undercount "+
		"(every lab topic keeps its records: retention.ms=-1). Rebuild this consumer's state from what the log still holds, or restore the records",
		e.Topic, e.Partition, e.Next, e.LogStart, e.LogStart-e.Next, e.Next, e.LogStart-1)
}

// Permanent: no waiting closes a gap (see serve.IsPermanent).
func (e *RetentionGapError) Permanent() bool { return true }

// CheckRetentionGap returns a *RetentionGapError when next (a consumer's
// stored next offset; negative means "from the beginning") lies below the
// partition's log start.
func CheckRetentionGap(topic string, partition int, next int64, b Bounds) error {
	if next >= 0 && next < b.First {
		return &RetentionGapError{Topic: topic, Partition: partition, Next: next, LogStart: b.First}
	}
	return nil
}

// LogResetError says that a consumer's stored position lies past the end
// of the partition: the log it was built from is gone (a broker whose data
// was wiped, a compose stack brought up again without Kafka's volume, a
// topic deleted and created again). Resuming would skip every new record
// below the stored offset without a word, so a consumer that meets one
// stops and reports it instead.
type LogResetError struct {
	Topic     string
	Partition int
	Next      int64 // the consumer's next offset to apply
	End       int64 // the partition's end offset now
}

func (e *LogResetError) Error() string {
	return fmt.Sprintf("log reset on %s partition %d: the stored position is offset %d but the log now ends at %d, "+
		"so the log this state was built from is gone (broker data wiped, or the topic re-created); stopped rather than "+
		"skip the new records. Remove this consumer's state to rebuild it from the new log, or bring back the broker's data",
		e.Topic, e.Partition, e.Next, e.End)
}

// Permanent: no waiting brings the old log back (see serve.IsPermanent).
func (e *LogResetError) Permanent() bool { return true }

// CheckRetentionGaps asks the broker for the bounds of every partition in
// pos (next offset per partition) and returns the first gap, or the first
// reset (a position past the partition's end: *LogResetError). When the
// broker cannot be asked it returns that error: callers decide whether to
// go on unchecked.
func (k *Cluster) CheckRetentionGaps(ctx context.Context, topic string, pos map[int]int64) error {
	ps := make([]int, 0, len(pos))
	for p := range pos {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	bounds, err := k.Offsets(ctx, topic, ps)
	if err != nil {
		return err
	}
	for _, p := range ps {
		if pos[p] > bounds[p].End {
			return &LogResetError{Topic: topic, Partition: p, Next: pos[p], End: bounds[p].End}
		}
		if err := CheckRetentionGap(topic, p, pos[p], bounds[p]); err != nil {
			return err
		}
	}
	return nil
}
