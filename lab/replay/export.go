package replay

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/ratingslab/lab/services/lib/kafkaio"
)

// ExportSpec chooses a topic range to export.
type ExportSpec struct {
	Topic string
	// From and To bound the range by record timestamp, [From, To), as the
	// broker maps time to offsets; zero means the beginning / the end.
	From, To time.Time
	// Partition limits the export to one partition; -1 means all.
	Partition int
}

// PartitionRange is the offsets one partition contributes: [From, To).
type PartitionRange struct {
	Partition int   `json:"partition"`
	From      int64 `json:"from"`
	To        int64 `json:"to"`
	Records   int64 `json:"records"`
}

// ExportResult says what was written.
type ExportResult struct {
	Topic   string           `json:"topic"`
	Records int64            `json:"records"`
	Ranges  []PartitionRange `json:"ranges"`
}

// ranges resolves a spec into offset ranges per partition. The end of the
// log is taken once, at the start: records produced meanwhile are not
// exported (the export is a snapshot, not a tail).
func ranges(ctx context.Context, k *kafkaio.Cluster, topic string, partition int, from, to time.Time) ([]PartitionRange, error) {
	if topic == "" {
		return nil, fmt.Errorf("--topic: a topic is required")
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		return nil, fmt.Errorf("--to %s: must be after --from %s", to.Format(time.RFC3339Nano), from.Format(time.RFC3339Nano))
	}
	n, err := partitionCount(ctx, k, topic)
	if err != nil {
		return nil, fmt.Errorf("--topic: %w", err)
	}
	parts := allPartitions(n)
	if partition >= 0 {
		if partition >= n {
			return nil, fmt.Errorf("--partition %d: topic %s has partitions 0..%d", partition, topic, n-1)
		}
		parts = []int{partition}
	}
	bounds, err := k.Offsets(ctx, topic, parts)
	if err != nil {
		return nil, err
	}
	starts, ends := map[int]int64{}, map[int]int64{}
	for _, p := range parts {
		starts[p], ends[p] = bounds[p].First, bounds[p].End
	}
	if !from.IsZero() {
		if starts, err = offsetsAt(ctx, k, topic, parts, from, bounds); err != nil {
			return nil, err
		}
	}
	if !to.IsZero() {
		if ends, err = offsetsAt(ctx, k, topic, parts, to, bounds); err != nil {
			return nil, err
		}
	}
	out := make([]PartitionRange, 0, len(parts))
	for _, p := range parts {
		r := PartitionRange{Partition: p, From: max(starts[p], bounds[p].First), To: min(ends[p], bounds[p].End)}
		if r.To < r.From {
			r.To = r.From
		}
		out = append(out, r)
	}
	return out, nil
}

// Export writes a topic range to w as JSON lines (see logfile.go), partition
// by partition in offset order, so the same range always gives the same
// file. progress, when set, is called now and then with the records written.
func Export(ctx context.Context, k *kafkaio.Cluster, spec ExportSpec, w io.Writer, progress func(written int64)) (ExportResult, error) {
	res := ExportResult{Topic: spec.Topic}
	rs, err := ranges(ctx, k, spec.Topic, spec.Partition, spec.From, spec.To)
	if err != nil {
		return res, err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	var line []byte
	last := time.Now()
	for i := range rs {
		r := &rs[i]
		err := scanRange(ctx, k, spec.Topic, r.Partition, r.From, r.To, func(rec Record) error {
			line = appendRecordLine(line[:0], rec)
			if _, err := bw.Write(line); err != nil {
				return fmt.Errorf("write export: %w", err)
			}
			r.Records++
			res.Records++
			if progress != nil && time.Since(last) > time.Second {
				last = time.Now()
				progress(res.Records)
			}
			return nil
		})
		if err != nil {
			return res, err
		}
	}
	res.Ranges = rs
	if err := bw.Flush(); err != nil {
		return res, fmt.Errorf("write export: %w", err)
	}
	if progress != nil {
		progress(res.Records)
	}
	return res, nil
}
