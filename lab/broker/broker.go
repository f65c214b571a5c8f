// Package broker is the lab's embedded Kafka broker: kfake speaking the real
// Kafka wire protocol on 127.0.0.1, persisting to a data directory so that
// records and group offsets survive a kill and restart, with the lab's topics
// created at start.
package broker

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/ratingslab/lab/services/model"
)

// Topics are created at start when missing: the lab's topics, model.Topics.
var Topics = model.Topics

// Runner is the `lab serve broker` process.
type Runner struct {
	listen          string
	dataDir         string
	compactInterval time.Duration
	syncWrites      bool
}

func (r *Runner) Flags(fs *flag.FlagSet) {
	fs.StringVar(&r.listen, "listen", "127.0.0.1:9092", "Kafka listener `address` (loopback only; also the advertised address)")
	fs.StringVar(&r.dataDir, "data", "", "data `dir`ectory; records, topics and group offsets persist here (empty: in memory only)")
	fs.DurationVar(&r.compactInterval, "compact-interval", 5*time.Second, "how often compacted topics are cleaned (log.cleaner.backoff.ms)")
	fs.BoolVar(&r.syncWrites, "sync-writes", false, "fsync every produced batch (default: OS page cache, like Kafka's default; survives a process kill, not a power cut)")
}

func (r *Runner) Run(ctx context.Context, log *slog.Logger) error {
	c, err := Start(r.listen, r.dataDir, r.compactInterval, r.syncWrites)
	if err != nil {
		return err
	}
	log.Info("broker ready", "listen", r.listen, "data", r.dataDir)
	<-ctx.Done()
	c.Close()
	log.Info("broker stopped")
	return nil
}

// Start runs a broker on listen (host must be loopback) and creates the lab's
// topics that do not exist yet.
func Start(listen, dataDir string, compactInterval time.Duration, syncWrites bool) (*kfake.Cluster, error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("--listen %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("--listen %q: the embedded broker listens on loopback only", listen)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("--listen %q: bad port", listen)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.ClusterID("ratings-lab"),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, listen) }),
		kfake.BrokerConfigs(map[string]string{"log.cleaner.backoff.ms": strconv.FormatInt(compactInterval.Milliseconds(), 10)}),
	}
	if dataDir != "" {
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return nil, fmt.Errorf("--data %s: %w", dataDir, err)
		}
		opts = append(opts, kfake.DataDir(dataDir))
	}
	if syncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		var opErr *net.OpError
		if errors.As(err, &opErr) {
			return nil, fmt.Errorf("broker cannot listen on %s: %w", listen, err)
		}
		return nil, fmt.Errorf("start broker: %w", err)
	}
	for _, t := range Topics {
		if c.TopicInfo(t.Name) != nil {
			continue // restored from the data dir
		}
		if err := c.CreateTopic(t.Name, t.Partitions, t.Configs); err != nil {
			c.Close()
			return nil, fmt.Errorf("create topic %s: %w", t.Name, err)
		}
	}
	return c, nil
}

// Ready checks protocol readiness: the broker answers a Metadata request and
// every lab topic exists with its partitions.
func Ready(ctx context.Context, addr string) error {
	client := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 2 * time.Second}
	names := make([]string, len(Topics))
	for i, t := range Topics {
		names[i] = t.Name
	}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
	if err != nil {
		return fmt.Errorf("metadata from %s: %w", addr, err)
	}
	found := map[string]int{}
	for _, t := range md.Topics {
		if t.Error == nil {
			found[t.Name] = len(t.Partitions)
		}
	}
	for _, t := range Topics {
		if found[t.Name] != int(t.Partitions) {
			return fmt.Errorf("topic %s not ready (%d of %d partitions)", t.Name, found[t.Name], t.Partitions)
		}
	}
	return nil
}
