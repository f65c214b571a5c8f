package embedded

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ratingslab/lab/services/model"
)

// A broker that starts on the data dir a kill -9 left, with a changelog
// transaction open, writes that transaction's abort marker and says so in
// its data check; the marker is the partition's last offset.
func TestStartAbortsTheTransactionsACrashLeftOpen(t *testing.T) {
	addr, dir := freeAddr(t), t.TempDir()
	c, _ := open(t, addr, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID("crash-test"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: model.TopicRatingsChangelog, Partition: 1, Key: []byte("k"), Value: []byte("open")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	died := t.TempDir() // the data dir as the kill leaves it: no clean-shutdown save
	if err := os.CopyFS(died, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	c.Close()

	c, check := open(t, addr, died)
	defer c.Close()
	if len(check.CrashAbortedTxns) != 1 {
		t.Fatalf("data check lists %q, want the one open transaction", check.CrashAbortedTxns)
	}
	pi := c.PartitionInfo(model.TopicRatingsChangelog, 1)
	if pi.HighWatermark != 2 || pi.LastStableOffset != 2 {
		t.Errorf("partition 1: high watermark %d, last stable offset %d; want 2 and 2 (the record and its abort marker)", pi.HighWatermark, pi.LastStableOffset)
	}
	// A second start finds nothing more to abort.
	c.Close()
	c, check = open(t, addr, died)
	defer c.Close()
	if len(check.CrashAbortedTxns) != 0 {
		t.Errorf("second start aborts %q again", check.CrashAbortedTxns)
	}
}
