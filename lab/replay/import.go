package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/lib/kafkaio"
)

// ImportSpec says where and how to import a file.
type ImportSpec struct {
	Topic string
	// Partitions is the partition count of a topic the import creates
	// (0: the highest partition in the file plus one).
	Partitions int
	// Configs of a topic the import creates (e.g. cleanup.policy=compact).
	Configs map[string]string
	// SkipBad imports the good lines of a file with bad ones; without it a
	// single bad line means nothing is imported.
	SkipBad bool
	// Append allows importing into a topic that already holds records.
	Append bool
}

// ImportResult says what was imported.
type ImportResult struct {
	Topic      string      `json:"topic"`
	Records    int64       `json:"records"`
	Created    bool        `json:"created"`
	Partitions int         `json:"partitions"`
	Skipped    []LineError `json:"-"`
	// SkippedTotal counts the bad lines dropped by SkipBad (Skipped lists
	// the first maxListedLines).
	SkippedTotal int `json:"skipped"`
}

const maxListedLines = 20

// BadLinesError lists the bad lines of a file that was not imported.
type BadLinesError struct {
	Name  string
	Lines []LineError
	Total int
}

func (e *BadLinesError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d bad line(s); nothing was imported", e.Name, e.Total)
	for _, l := range e.Lines {
		b.WriteString("\n  " + l.Error())
	}
	if e.Total > len(e.Lines) {
		fmt.Fprintf(&b, "\n  ... and %d more", e.Total-len(e.Lines))
	}
	b.WriteString("\n(--skip-bad imports the good lines only)")
	return b.String()
}

// importBatch is how many records go into one produce call: kafka-go then
// sends at most one batch per partition per call, and calls follow each
// other, so the records of a partition keep their order.
const importBatch = 1000

// Import reads a file written by Export (open is called twice: the whole
// file is checked before anything is written) and produces its records to
// spec.Topic with acks=all, each on the partition and with the timestamp,
// key, value and headers of its line. A topic that does not exist is
// created. Kafka assigns new offsets; a failed import may have written part
// of the file (the error says how much was acknowledged).
func Import(ctx context.Context, k *kafkaio.Cluster, name string, open func() (io.ReadCloser, error), spec ImportSpec, progress func(done, total int64)) (ImportResult, error) {
	res := ImportResult{Topic: spec.Topic}
	if spec.Topic == "" {
		return res, errors.New("--topic: a topic is required")
	}
	if spec.Partitions < 0 {
		return res, fmt.Errorf("--partitions %d: must be > 0", spec.Partitions)
	}
	existing, err := importTarget(ctx, k, spec)
	if err != nil {
		return res, err
	}

	// Pass 1: every line must be a record the topic can take.
	total, maxPart, bad, err := checkLines(open, name, spec, existing)
	if err != nil {
		return res, err
	}
	if bad.Total > 0 && !spec.SkipBad {
		return res, bad
	}
	res.Skipped, res.SkippedTotal = bad.Lines, bad.Total
	if total == 0 {
		return res, fmt.Errorf("%s: no records to import", name)
	}

	res.Partitions = existing
	if existing == 0 {
		n := spec.Partitions
		if n == 0 {
			n = maxPart + 1
		}
		if err := createTopic(ctx, k, spec.Topic, n, spec.Configs); err != nil {
			return res, err
		}
		res.Created, res.Partitions = true, n
	}

	// Pass 2: produce, in file order, in batches.
	err = produceLines(ctx, k, open, spec, &res, total, progress)
	return res, err
}

// importTarget is the partition count of the topic to import into (0 when
// it does not exist yet); a topic holding records is refused unless the
// import appends.
func importTarget(ctx context.Context, k *kafkaio.Cluster, spec ImportSpec) (int, error) {
	existing, err := partitionCount(ctx, k, spec.Topic)
	switch {
	case errors.Is(err, ErrNoTopic):
		return 0, nil
	case err != nil:
		return 0, err
	}
	if !spec.Append {
		bounds, err := k.Offsets(ctx, spec.Topic, allPartitions(existing))
		if err != nil {
			return 0, err
		}
		var held int64
		for _, b := range bounds {
			held += b.End - b.First
		}
		if held > 0 {
			return 0, fmt.Errorf("--topic %s already holds %d record(s); importing would add the file's records after them — pass --append to do that, or import into a new topic", spec.Topic, held)
		}
	}
	return existing, nil
}

// checkLines reads the file once: total records the topic can take, the
// highest partition they name, and the lines it cannot (bad).
func checkLines(open func() (io.ReadCloser, error), name string, spec ImportSpec, existing int) (total int64, maxPart int, bad *BadLinesError, err error) {
	bad = &BadLinesError{Name: name}
	maxPart = -1
	err = readFile(open, func(n int, line []byte) error {
		r, err := parseRecordLine(line)
		if err == nil && existing > 0 && r.Partition >= existing {
			err = fmt.Errorf("partition: %d, but topic %s has partitions 0..%d", r.Partition, spec.Topic, existing-1)
		}
		if err == nil && existing == 0 && spec.Partitions > 0 && r.Partition >= spec.Partitions {
			err = fmt.Errorf("partition: %d, but --partitions %d makes 0..%d", r.Partition, spec.Partitions, spec.Partitions-1)
		}
		if err != nil {
			bad.Total++
			if len(bad.Lines) < maxListedLines {
				bad.Lines = append(bad.Lines, LineError{Line: n, Err: err})
			}
			return nil
		}
		total++
		maxPart = max(maxPart, r.Partition)
		return nil
	})
	return total, maxPart, bad, err
}

// produceLines reads the file again and produces its good records in file
// order, in batches, counting them in res.Records.
func produceLines(ctx context.Context, k *kafkaio.Cluster, open func() (io.ReadCloser, error), spec ImportSpec, res *ImportResult, total int64, progress func(done, total int64)) error {
	w := k.Writer(spec.Topic, kafkaio.WriterOptions{Balancer: partitionBalancer{}, BatchSize: importBatch})
	defer w.Close()
	batch := make([]kafka.Message, 0, importBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := w.Write(wctx, batch...)
		cancel()
		if err != nil {
			return fmt.Errorf("import into %s stopped after %d acknowledged record(s); the failed batch of %d may be partly written: %w", spec.Topic, res.Records, len(batch), err)
		}
		res.Records += int64(len(batch))
		batch = batch[:0]
		if progress != nil {
			progress(res.Records, total)
		}
		return nil
	}
	err := readFile(open, func(n int, line []byte) error {
		r, err := parseRecordLine(line)
		if err != nil || r.Partition >= res.Partitions {
			return nil // a bad line, skipped in pass 1 with --skip-bad
		}
		batch = append(batch, kafka.Message{Partition: r.Partition, Time: r.Time, Key: r.Key, Value: r.Value, Headers: r.Headers})
		if len(batch) == importBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return err
}

func readFile(open func() (io.ReadCloser, error), fn func(n int, line []byte) error) error {
	f, err := open()
	if err != nil {
		return err
	}
	defer f.Close()
	return scanLines(f, fn)
}

// createTopic creates a topic and waits (bounded) until every partition is
// led, so the first produce finds it.
func createTopic(ctx context.Context, k *kafkaio.Cluster, topic string, partitions int, configs map[string]string) error {
	var entries []kafka.ConfigEntry
	keys := make([]string, 0, len(configs))
	for key := range configs {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		entries = append(entries, kafka.ConfigEntry{ConfigName: key, ConfigValue: configs[key]})
	}
	res, err := k.Client().CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: 1, ConfigEntries: entries,
	}}})
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	if err := res.Errors[topic]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	_, err = k.WaitForTopics(ctx, []string{topic}, kafkaio.TopicWait{Timeout: 10 * time.Second, Interval: 100 * time.Millisecond})
	return err
}
