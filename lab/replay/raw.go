package replay

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/lib/kafkaio"
)

// RawRate is how fast a bare kafka-go consumer reads the same topics: the
// ceiling a rebuild's rate is measured against.
type RawRate struct {
	Topics       []string      `json:"topics"`
	Records      int64         `json:"records"`
	Duration     time.Duration `json:"duration_ns"`
	EventsPerSec float64       `json:"events_per_sec"`
}

// measureRaw reads every record of topics, from the beginning to the end
// they have now, with one kafka-go partition Reader per partition (the
// reading ratings-stream does, without any processing), and times it.
func measureRaw(ctx context.Context, k *kafkaio.Cluster, topics ...string) (*RawRate, error) {
	type job struct {
		topic     string
		partition int
		first     int64
		last      int64 // offset of the last record: reading stops there
	}
	var jobs []job
	for _, topic := range topics {
		n, err := partitionCount(ctx, k, topic)
		if err != nil {
			return nil, err
		}
		bounds, err := k.Offsets(ctx, topic, allPartitions(n))
		if err != nil {
			return nil, err
		}
		for p, b := range bounds {
			if b.End > b.First {
				// In a compacted topic the newest record of a partition is
				// always kept (it is the latest of its key), so End-1 is
				// there to be read.
				jobs = append(jobs, job{topic, p, b.First, b.End - 1})
			}
		}
	}
	var records atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(jobs))
	rctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	start := time.Now()
	for _, j := range jobs {
		wg.Go(func() {
			r := kafka.NewReader(kafka.ReaderConfig{
				Brokers: k.Config().Brokers, Dialer: k.Dialer(), Topic: j.topic, Partition: j.partition,
				MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 250 * time.Millisecond, QueueCapacity: 4096,
			})
			defer r.Close()
			if err := r.SetOffset(j.first); err != nil {
				errs <- err
				return
			}
			for {
				m, err := r.FetchMessage(rctx)
				if err != nil {
					errs <- fmt.Errorf("raw read of %s/%d: %w", j.topic, j.partition, err)
					return
				}
				records.Add(1)
				if m.Offset >= j.last {
					return
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	rate := &RawRate{Topics: topics, Records: records.Load(), Duration: took}
	if took > 0 {
		rate.EventsPerSec = float64(rate.Records) / took.Seconds()
	}
	return rate, nil
}
