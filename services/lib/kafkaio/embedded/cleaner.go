package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// kfake's own log cleaner compacts every compacted partition at every
// log.cleaner.backoff.ms, whether or not anything was written since: it
// reads every retained batch twice, rewrites every survivor and fsyncs the
// new segments. It does so inside the cluster's single request loop, so
// every Produce waits for it, and the wait grows with what the compacted
// topics retain (docs/benchmarks.md, "The log variant's p99 tail"). Apache
// Kafka's cleaner runs beside the request path and cleans a log only when
// its dirty part — bytes written since its last clean — is at least
// min.cleanable.dirty.ratio of it (default 0.5), so the cost per record
// written stays constant however much is retained.
//
// The lab's broker therefore turns kfake's cleaner off (kfakeCleanerOff)
// and runs a Cleaner instead, with Kafka's rule. Two limits of kfake stay
// and are stated, not hidden: its only compaction (Cluster.Compact) still
// runs inside the request loop, and it cleans every compacted partition
// at once, so the Cleaner treats the compacted partitions as one log:
// it cleans when their dirty bytes are at least the ratio of their bytes.

// kfakeCleanerOff is the log.cleaner.backoff.ms given to kfake so that its
// own cleaner never runs (100 years; kfake multiplies it into a
// time.Duration, which a larger value would overflow).
const kfakeCleanerOff = 100 * 365 * 24 * time.Hour

// DefaultDirtyRatio is Kafka's log.cleaner.min.cleanable.ratio.
const DefaultDirtyRatio = 0.5

// CleanerCheckpointFile, inside the data dir, holds each compacted
// partition's size right after the last clean (Kafka's
// cleaner-offset-checkpoint), so a restart does not clean a clean log again.
const CleanerCheckpointFile = "lab-cleaner-checkpoint.json"

// Cleaner is the lab broker's log cleaner. Tick is one check; Run ticks
// until its context ends. A Cleaner must stop before its cluster closes
// (kfake's admin calls block forever on a closed cluster).
type Cleaner struct {
	c       *kfake.Cluster
	addr    string // the broker's listener, for the topic list (Metadata)
	dataDir string // "" keeps the checkpoint in memory only
	ratio   float64
	log     *slog.Logger
	// OnCheck and OnClean are called after every check and every clean
	// (from the goroutine calling Tick).
	OnCheck func(Check)
	OnClean func(CleanRun)

	clean map[string]map[int32]int64 // topic → partition → bytes after the last clean
	known map[string]bool            // topics seen, for when Metadata fails
}

// CleanRun is one clean: how dirty the compacted log was, how long kfake's
// request loop was held, and its size before and after.
type CleanRun struct {
	DirtyRatio  float64
	Partitions  int
	BytesBefore int64
	BytesAfter  int64
	Held        time.Duration // every Produce arriving meanwhile waited
}

// Check is what a Tick found.
type Check struct {
	Ran        bool
	DirtyRatio float64 // dirty bytes / bytes over every compacted partition (0 when empty)
	DirtyBytes int64
	Bytes      int64
}

// NewCleaner is the cleaner of c, whose first listener is addr; dataDir
// holds its checkpoint ("" for a broker without data dir); a ratio of 0
// is DefaultDirtyRatio.
func NewCleaner(c *kfake.Cluster, addr, dataDir string, ratio float64, log *slog.Logger) (*Cleaner, error) {
	if ratio == 0 {
		ratio = DefaultDirtyRatio
	}
	if !(ratio > 0 && ratio <= 1) { // NaN too
		return nil, fmt.Errorf("min cleanable dirty ratio %v: want a fraction in (0, 1]", ratio)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cl := &Cleaner{c: c, addr: addr, dataDir: dataDir, ratio: ratio, log: log, clean: map[string]map[int32]int64{}, known: map[string]bool{}}
	for _, t := range Topics {
		cl.known[t.Name] = true
	}
	if dataDir != "" {
		if err := cl.readCheckpoint(); err != nil {
			// Unknown means dirty: the first clean rebuilds it.
			log.Warn("the log cleaner's checkpoint is unreadable; every compacted partition counts as dirty", "error", err.Error())
			cl.clean = map[string]map[int32]int64{}
		}
	}
	return cl, nil
}

// Run checks every interval (log.cleaner.backoff.ms) until ctx ends; it
// also applies time and size retention then, as kfake's cleaner did.
func (cl *Cleaner) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cl.Tick(ctx)
	}
}

// Tick applies retention to every topic (cheap: a topic kept forever is
// skipped at once) and compacts when the compacted partitions are dirty
// enough.
func (cl *Cleaner) Tick(ctx context.Context) Check {
	cl.c.ApplyRetention()
	topics := cl.compactedTopics(ctx)
	sizes := cl.sizes(topics)
	var check Check
	for t, ps := range sizes {
		for p, size := range ps {
			clean := min(cl.clean[t][p], size) // a log that shrank (retention, recreated) is clean up to its size
			check.Bytes += size
			check.DirtyBytes += size - clean
		}
	}
	if check.Bytes > 0 {
		check.DirtyRatio = float64(check.DirtyBytes) / float64(check.Bytes)
	}
	if cl.OnCheck != nil {
		cl.OnCheck(check)
	}
	if check.DirtyBytes == 0 || check.DirtyRatio < cl.ratio {
		return check
	}
	began := time.Now()
	cl.c.Compact()
	held := time.Since(began)
	check.Ran = true
	// A record produced between Compact and this read counts as clean:
	// the next clean comes that much later, never sooner.
	after := cl.sizes(topics)
	run := CleanRun{DirtyRatio: check.DirtyRatio, BytesBefore: check.Bytes, Held: held}
	cl.clean = map[string]map[int32]int64{}
	for t, ps := range after {
		cl.clean[t] = map[int32]int64{}
		for p, size := range ps {
			cl.clean[t][p] = size
			run.BytesAfter += size
			run.Partitions++
		}
	}
	if cl.dataDir != "" {
		if err := cl.writeCheckpoint(); err != nil {
			cl.log.Warn("could not record the log cleaner's checkpoint", "error", err.Error())
		}
	}
	if cl.OnClean != nil {
		cl.OnClean(run)
	}
	return check
}

// compactedTopics are the topics with cleanup.policy containing compact:
// every topic the broker has (Metadata), or, when it cannot be asked (a
// protocol fault), those seen before.
func (cl *Cleaner) compactedTopics(ctx context.Context) []string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(cl.addr), Timeout: 5 * time.Second}
	if md, err := client.Metadata(ctx, &kafka.MetadataRequest{}); err == nil {
		for _, t := range md.Topics {
			if t.Error == nil {
				cl.known[t.Name] = true
			}
		}
	} else {
		cl.log.Debug("log cleaner: topic list unavailable, using the topics seen before", "error", err.Error())
	}
	var out []string
	for t := range cl.known {
		info := cl.c.TopicInfo(t)
		if info == nil {
			delete(cl.known, t)
			continue
		}
		if v := info.Configs["cleanup.policy"]; v != nil && strings.Contains(*v, "compact") {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

// sizes are the bytes each partition of topics holds now.
func (cl *Cleaner) sizes(topics []string) map[string]map[int32]int64 {
	out := map[string]map[int32]int64{}
	for _, t := range topics {
		out[t] = map[int32]int64{}
		for _, p := range cl.c.PartitionInfos(t) {
			if p != nil {
				out[t][p.Partition] = p.NumBytes
			}
		}
	}
	return out
}

// The checkpoint: topic → partition (as a string, JSON keys) → bytes.
type cleanerCheckpoint struct {
	Written time.Time                   `json:"written"`
	Clean   map[string]map[string]int64 `json:"clean_bytes"`
}

func (cl *Cleaner) readCheckpoint() error {
	b, err := os.ReadFile(filepath.Join(cl.dataDir, CleanerCheckpointFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var cp cleanerCheckpoint
	if err := json.Unmarshal(b, &cp); err != nil {
		return fmt.Errorf("%s: %w", CleanerCheckpointFile, err)
	}
	for t, ps := range cp.Clean {
		cl.clean[t] = map[int32]int64{}
		for p, n := range ps {
			i, err := strconv.ParseInt(p, 10, 32)
			if err != nil || n < 0 || n > math.MaxInt64/2 {
				return fmt.Errorf("%s: topic %s partition %q: bad entry %d", CleanerCheckpointFile, t, p, n)
			}
			cl.clean[t][int32(i)] = n
		}
	}
	return nil
}

func (cl *Cleaner) writeCheckpoint() error {
	cp := cleanerCheckpoint{Written: time.Now().UTC(), Clean: map[string]map[string]int64{}}
	for t, ps := range cl.clean {
		cp.Clean[t] = map[string]int64{}
		for p, n := range ps {
			cp.Clean[t][strconv.Itoa(int(p))] = n
		}
	}
	return writeJSONFile(filepath.Join(cl.dataDir, CleanerCheckpointFile), cp)
}
