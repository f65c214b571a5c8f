package embedded

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/ratingslab/lab/services/model"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func open(t *testing.T, addr, dir string) (*kfake.Cluster, DataCheck) {
	t.Helper()
	c, check, err := Open(addr, dir, false, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return c, check
}

// produce writes n records to partition 0 of topic, one batch each, with
// the given record timestamp.
func produce(t *testing.T, addr, topic string, n int, at time.Time) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond,
		Balancer: kafka.BalancerFunc(func(kafka.Message, ...int) int { return 0 })}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range n {
		if err := w.WriteMessages(ctx, kafka.Message{Key: []byte(fmt.Sprint(i)), Value: []byte(strings.Repeat("v", 40)), Time: at}); err != nil {
			t.Fatal(err)
		}
	}
}

func logStart(t *testing.T, c *kfake.Cluster, topic string) (start, end int64) {
	t.Helper()
	pi := c.PartitionInfo(topic, 0)
	return pi.LogStartOffset, pi.HighWatermark
}

// Every lab topic keeps its records whatever their age: a record imported
// with a month-old timestamp survives a retention pass, compacted topics too.
func TestLabTopicsKeepOldRecordsThroughRetention(t *testing.T) {
	addr := freeAddr(t)
	c, _ := open(t, addr, t.TempDir())
	defer c.Close()
	for _, topic := range []string{model.TopicRatings, model.TopicMovies} {
		produce(t, addr, topic, 3, time.Now().Add(-30*24*time.Hour))
	}
	c.ApplyRetention()
	c.Compact()
	for _, topic := range []string{model.TopicRatings, model.TopicMovies} {
		if start, end := logStart(t, c, topic); start != 0 || end != 3 {
			t.Errorf("%s after a retention pass holds [%d, %d), want [0, 3): month-old records were deleted", topic, start, end)
		}
	}
}

// A data dir created before retention.ms=-1 (topics with the broker's 7-day
// default) is fixed at start, and says so.
func TestExistingDataDirGetsTheTopicTablesRetention(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	old, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range model.Topics {
		cfg := map[string]string{}
		if v, ok := tp.Configs["cleanup.policy"]; ok {
			cfg["cleanup.policy"] = v
		}
		if err := old.CreateTopic(tp.Name, tp.Partitions, cfg); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()

	c, check := open(t, addr, dir)
	defer c.Close()
	if len(check.ConfigsFixed) == 0 || !strings.Contains(strings.Join(check.ConfigsFixed, " "), "ratings retention.ms=-1") {
		t.Errorf("configs fixed at start: %q, want ratings retention.ms=-1 among them", check.ConfigsFixed)
	}
	for _, tp := range model.Topics {
		if v := c.TopicInfo(tp.Name).Configs["retention.ms"]; v == nil || *v != tp.Configs["retention.ms"] {
			t.Errorf("%s retention.ms after start: %v, want %s", tp.Name, v, tp.Configs["retention.ms"])
		}
	}
	produce(t, addr, model.TopicRatings, 2, time.Now().Add(-30*24*time.Hour))
	c.ApplyRetention()
	if start, _ := logStart(t, c, model.TopicRatings); start != 0 {
		t.Errorf("ratings log start %d after retention, want 0", start)
	}
}

// A truncated partition file (acknowledged records cut off the end) is
// found at the next start and reported: which partition, how many records.
func TestTruncatedPartitionIsReportedAtStart(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	c, check := open(t, addr, dir)
	if check.Warning() != "" {
		t.Errorf("a new data dir: warning %q", check.Warning())
	}
	produce(t, addr, model.TopicRatings, 20, time.Now())
	if err := writeWatermarks(dir, currentWatermarks(c)); err != nil { // as the running broker does every second
		t.Fatal(err)
	}
	c.Close()

	// A clean restart finds everything.
	c, check = open(t, addr, dir)
	if check.Warning() != "" || check.Baseline.IsZero() {
		t.Errorf("a clean restart: warning %q, baseline %v; want no warning, a baseline", check.Warning(), check.Baseline)
	}
	c.Close()

	segs, _ := filepath.Glob(filepath.Join(dir, "partitions", "ratings-0", "*.dat"))
	if len(segs) == 0 {
		t.Fatal("no segment file for ratings-0")
	}
	st, _ := os.Stat(segs[len(segs)-1])
	if err := os.Truncate(segs[len(segs)-1], st.Size()-300); err != nil {
		t.Fatal(err)
	}

	c, check = open(t, addr, dir)
	defer c.Close()
	if len(check.Lost) != 1 || check.Lost[0].Topic != model.TopicRatings || check.Lost[0].Partition != 0 || check.Lost[0].Had != 20 || check.Lost[0].Has >= 20 {
		t.Fatalf("data check after truncating ratings-0: %+v, want ratings-0 lost from 20 down", check)
	}
	w := check.Warning()
	if !strings.Contains(w, "DATA LOST") || !strings.Contains(w, fmt.Sprintf("%d record(s)", check.LostRecords())) || !strings.Contains(w, "ratings-0") {
		t.Errorf("warning %q should say DATA LOST, how many records and where", w)
	}
}
