package embedded

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// kfake recovers from a damaged data dir silently: a truncated or corrupt
// segment is cut back to its last whole batch, and the broker starts
// "healthy" without the records that were there. The lab's broker keeps a
// record of how far every partition reached (WatermarksFile, rewritten
// every second and at a clean stop) and checks the restored log against it
// at start, so lost acknowledged records are reported, not hidden.

// WatermarksFile, inside the data dir, holds the last high watermarks seen.
const WatermarksFile = "lab-watermarks.json"

type watermarks struct {
	Written time.Time             `json:"written"`
	Topics  map[string]topicMarks `json:"topics"`
}

type topicMarks struct {
	ID             string  `json:"id"` // a recreated topic has a new id: its offsets start again
	HighWatermarks []int64 `json:"high_watermarks"`
}

// Loss is a partition whose restored log ends below where it ended before.
type Loss struct {
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	Had       int64  `json:"had"` // high watermark recorded before the restart
	Has       int64  `json:"has"` // high watermark after loading the data dir
}

// DataCheck is what the broker found in its data dir at start.
type DataCheck struct {
	// Baseline is when the watermarks compared against were recorded
	// (zero: none were, e.g. a new data dir).
	Baseline time.Time `json:"baseline,omitzero"`
	Lost     []Loss    `json:"lost,omitempty"`
	// Damaged are kfake's own reports of corrupt bytes it dropped while loading.
	Damaged []string `json:"damaged,omitempty"`
	// Recreated topics had another topic id before: not compared.
	Recreated []string `json:"recreated,omitempty"`
	// ConfigsFixed are topic configs brought in line with model.Topics
	// (data dirs created before retention.ms=-1).
	ConfigsFixed []string `json:"configs_fixed,omitempty"`
	// CrashAbortedTxns are transactions open when the broker died, given
	// the abort marker kfake leaves out (crashtxns.go).
	CrashAbortedTxns []string `json:"crash_aborted_transactions,omitempty"`
}

// LostRecords is the number of records lost over every partition.
func (d DataCheck) LostRecords() int64 {
	var n int64
	for _, l := range d.Lost {
		n += l.Had - l.Has
	}
	return n
}

// Warning is one line for `lab status` and `lab up` ("" when all is well).
func (d DataCheck) Warning() string {
	var parts []string
	if len(d.Lost) > 0 {
		var where []string
		for _, l := range d.Lost {
			where = append(where, fmt.Sprintf("%s-%d offsets %d..%d", l.Topic, l.Partition, l.Has, l.Had-1))
		}
		parts = append(parts, fmt.Sprintf("DATA LOST: %d record(s) the broker held before its restart are gone (%s)", d.LostRecords(), strings.Join(where, ", ")))
	}
	if len(d.Damaged) > 0 {
		parts = append(parts, fmt.Sprintf("data dir damaged: %s", strings.Join(d.Damaged, "; ")))
	}
	return strings.Join(parts, "; ")
}

func readWatermarks(dataDir string) (watermarks, error) {
	var w watermarks
	b, err := os.ReadFile(filepath.Join(dataDir, WatermarksFile))
	if errors.Is(err, os.ErrNotExist) {
		return w, nil
	}
	if err != nil {
		return w, err
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return w, fmt.Errorf("%s: %w", filepath.Join(dataDir, WatermarksFile), err)
	}
	return w, nil
}

// currentWatermarks reads every lab topic's high watermarks from c.
func currentWatermarks(c *kfake.Cluster) watermarks {
	w := watermarks{Written: time.Now().UTC(), Topics: map[string]topicMarks{}}
	for _, t := range Topics {
		info := c.TopicInfo(t.Name)
		if info == nil {
			continue
		}
		tm := topicMarks{ID: hex.EncodeToString(info.TopicID[:])}
		for p := range t.Partitions {
			hwm := int64(-1)
			if pi := c.PartitionInfo(t.Name, p); pi != nil {
				hwm = pi.HighWatermark
			}
			tm.HighWatermarks = append(tm.HighWatermarks, hwm)
		}
		w.Topics[t.Name] = tm
	}
	return w
}

func writeWatermarks(dataDir string, w watermarks) error {
	return writeJSONFile(filepath.Join(dataDir, WatermarksFile), w)
}

// writeJSONFile replaces path with v as indented JSON, whole or not at all
// (a temporary file renamed over it), for the broker's files in its data dir.
func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// compare finds partitions that end below their recorded watermarks.
func compare(before, after watermarks) (lost []Loss, recreated []string) {
	names := make([]string, 0, len(before.Topics))
	for n := range before.Topics {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		had := before.Topics[name]
		has, ok := after.Topics[name]
		if !ok {
			continue // the topic is created again at start: Start says so
		}
		if had.ID != has.ID {
			recreated = append(recreated, name)
			continue
		}
		for p, hw := range had.HighWatermarks {
			if p < len(has.HighWatermarks) && has.HighWatermarks[p] < hw {
				lost = append(lost, Loss{Topic: name, Partition: p, Had: hw, Has: has.HighWatermarks[p]})
			}
		}
	}
	return lost, recreated
}

// KeepWatermarks rewrites the watermarks file every interval until ctx
// ends, and once more then (a clean stop).
func KeepWatermarks(ctx context.Context, c *kfake.Cluster, dataDir string, interval time.Duration, log *slog.Logger) {
	last := currentWatermarks(c)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := writeWatermarks(dataDir, currentWatermarks(c)); err != nil {
				log.Warn("could not record the partitions' watermarks", "error", err.Error())
			}
			return
		case <-t.C:
		}
		now := currentWatermarks(c)
		if reflect.DeepEqual(now.Topics, last.Topics) {
			continue
		}
		if err := writeWatermarks(dataDir, now); err != nil {
			log.Warn("could not record the partitions' watermarks", "error", err.Error())
			continue
		}
		last = now
	}
}

// fixTopicConfigs brings restored topics' configs in line with model.Topics
// (retention.ms=-1 on data dirs created before it), through the Kafka API.
func fixTopicConfigs(ctx context.Context, c *kfake.Cluster, addr string) ([]string, error) {
	var res []kafka.IncrementalAlterConfigsRequestResource
	var fixed []string
	for _, t := range Topics {
		info := c.TopicInfo(t.Name)
		if info == nil {
			continue
		}
		var cfgs []kafka.IncrementalAlterConfigsRequestConfig
		keys := make([]string, 0, len(t.Configs))
		for k := range t.Configs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			want := t.Configs[k]
			have, ok := info.Configs[k]
			if ok && have != nil && *have == want {
				continue
			}
			was := "unset"
			if ok && have != nil {
				was = *have
			}
			cfgs = append(cfgs, kafka.IncrementalAlterConfigsRequestConfig{Name: k, Value: want, ConfigOperation: kafka.ConfigOperationSet})
			fixed = append(fixed, fmt.Sprintf("%s %s=%s (was %s)", t.Name, k, want, was))
		}
		if len(cfgs) > 0 {
			res = append(res, kafka.IncrementalAlterConfigsRequestResource{ResourceType: kafka.ResourceTypeTopic, ResourceName: t.Name, Configs: cfgs})
		}
	}
	if len(res) == 0 {
		return nil, nil
	}
	client := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 5 * time.Second}
	resp, err := client.IncrementalAlterConfigs(ctx, &kafka.IncrementalAlterConfigsRequest{Resources: res})
	if err != nil {
		return nil, fmt.Errorf("fix topic configs: %w", err)
	}
	for _, r := range resp.Resources {
		if r.Error != nil {
			return nil, fmt.Errorf("fix topic configs of %s: %w", r.ResourceName, r.Error)
		}
	}
	return fixed, nil
}

// kfakeLog forwards kfake's warnings and errors to the part's log and
// keeps those about corrupt data seen while the data dir loads.
type kfakeLog struct {
	log     *slog.Logger
	mu      sync.Mutex
	loading bool
	damaged []string
}

func (k *kfakeLog) Logf(level kfake.LogLevel, format string, args ...any) {
	if level > kfake.LogLevelWarn || level == kfake.LogLevelNone {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if level == kfake.LogLevelError {
		k.log.Error(msg, "component", "kfake")
	} else {
		k.log.Warn(msg, "component", "kfake")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.loading && (strings.Contains(msg, "corrupt") || strings.Contains(msg, "truncat") || strings.Contains(msg, "malformed")) {
		k.damaged = append(k.damaged, msg)
	}
}

func (k *kfakeLog) loaded() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.loading = false
	return slices.Clone(k.damaged)
}
