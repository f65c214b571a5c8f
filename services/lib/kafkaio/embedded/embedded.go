// Package embedded starts the lab's embedded Kafka broker: kfake speaking
// the real Kafka wire protocol on 127.0.0.1, persisting to a data directory
// so that records and group offsets survive a kill and restart (checked
// against the watermarks recorded there), with the lab's topics created at
// start. lab/broker runs it as the `lab serve broker` part (admin listener,
// metrics, protocol faults); services' tests start it in-process
// (kafkatest.StartDurable).
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/ratingslab/lab/services/model"
)

// Topics are created at start when missing: the lab's topics, model.Topics.
var Topics = model.Topics

// Start runs a broker on listen (host must be loopback) and creates the lab's
// topics that do not exist yet (Open without the report). Nothing is
// compacted unless the caller runs a Cleaner (cleaner.go).
func Start(listen, dataDir string, syncWrites bool) (*kfake.Cluster, error) {
	c, _, err := Open(listen, dataDir, syncWrites, slog.New(slog.DiscardHandler))
	return c, err
}

// Open runs a broker on listen (host must be loopback), loads dataDir and
// checks it against the watermarks recorded there, creates the lab's topics
// that do not exist yet and fixes the configs of those that do.
func Open(listen, dataDir string, syncWrites bool, log *slog.Logger) (*kfake.Cluster, DataCheck, error) {
	c, _, check, err := OpenNodes([]string{listen}, dataDir, syncWrites, log)
	return c, check, err
}

// StartNodes is Start for a cluster of one node per address (see OpenNodes).
func StartNodes(listens []string, dataDir string, syncWrites bool) (*kfake.Cluster, *Nodes, error) {
	c, nodes, _, err := OpenNodes(listens, dataDir, syncWrites, slog.New(slog.DiscardHandler))
	return c, nodes, err
}

// OpenNodes is Open for a cluster of one node per address: kfake nodes
// 0..n-1 in one process, sharing one log (no replication: a lost node loses
// no data, its partitions move). It returns the nodes' listeners too (node
// loss closes the connections a node accepted). kfake's own log cleaner is
// off: the caller runs a Cleaner (cleaner.go), which compacts the way Kafka
// does.
func OpenNodes(listens []string, dataDir string, syncWrites bool, log *slog.Logger) (*kfake.Cluster, *Nodes, DataCheck, error) {
	var check DataCheck
	ports := make([]int, len(listens))
	for i, listen := range listens {
		host, portStr, err := net.SplitHostPort(listen)
		if err != nil {
			return nil, nil, check, fmt.Errorf("--listen %q: %w", listen, err)
		}
		if ip := net.ParseIP(host); ip == nil || !ip.Equal(net.IPv4(127, 0, 0, 1)) {
			return nil, nil, check, fmt.Errorf("--listen %q: the embedded broker listens on loopback only (127.0.0.1)", listen)
		}
		if ports[i], err = strconv.Atoi(portStr); err != nil || ports[i] <= 0 {
			return nil, nil, check, fmt.Errorf("--listen %q: bad port", listen)
		}
	}
	listen := listens[0]
	nodes := newNodes(listens)
	klog := &kfakeLog{log: log, loading: true}
	opts := []kfake.Opt{
		kfake.NumBrokers(len(listens)),
		kfake.Ports(ports...),
		kfake.ClusterID("ratings-lab"),
		kfake.ListenFn(nodes.listen),
		kfake.BrokerConfigs(map[string]string{"log.cleaner.backoff.ms": strconv.FormatInt(kfakeCleanerOff.Milliseconds(), 10)}),
		kfake.WithLogger(klog),
	}
	var before watermarks
	if dataDir != "" {
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return nil, nil, check, fmt.Errorf("--data %s: %w", dataDir, err)
		}
		var err error
		if before, err = readWatermarks(dataDir); err != nil {
			log.Warn("the recorded watermarks are unreadable; the data dir cannot be checked this time", "error", err.Error())
		}
		opts = append(opts, kfake.DataDir(dataDir))
	}
	if syncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	began := time.Now()
	c, err := kfake.NewCluster(opts...)
	loaded := time.Since(began)
	if err != nil {
		var opErr *net.OpError
		if errors.As(err, &opErr) {
			return nil, nil, check, fmt.Errorf("broker cannot listen on %s: %w", strings.Join(listens, ","), err)
		}
		return nil, nil, check, fmt.Errorf("start broker: %w", err)
	}
	if dataDir != "" {
		// No new transaction until those a crash left open are aborted
		// (crashtxns.go).
		release := holdTransactions(c)
		defer release()
	}
	check.Damaged = klog.loaded()
	if dataDir != "" && len(before.Topics) > 0 {
		check.Baseline = before.Written
		check.Lost, check.Recreated = compare(before, currentWatermarks(c))
	}
	for _, t := range Topics {
		if c.TopicInfo(t.Name) != nil {
			continue // restored from the data dir
		}
		if err := c.CreateTopic(t.Name, t.Partitions, t.Configs); err != nil {
			c.Close()
			return nil, nil, check, fmt.Errorf("create topic %s: %w", t.Name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var txnScan time.Duration
	if check.ConfigsFixed, err = fixTopicConfigs(ctx, c, listen); err != nil {
		c.Close()
		return nil, nil, check, err
	}
	if dataDir != "" {
		scanBegan := time.Now()
		crashed, err := abortCrashedTransactions(ctx, c, listen, transactionalTopics)
		txnScan = time.Since(scanBegan)
		for _, t := range crashed {
			check.CrashAbortedTxns = append(check.CrashAbortedTxns, t.String())
		}
		if err != nil {
			c.Close()
			return nil, nil, check, fmt.Errorf("abort the transactions a crash left open: %w", err)
		}
	}
	if dataDir != "" {
		// The restored state is the new baseline: a loss is reported by the
		// start that finds it (and in this process's health), not forever.
		if err := writeWatermarks(dataDir, currentWatermarks(c)); err != nil {
			c.Close()
			return nil, nil, check, fmt.Errorf("--data %s: record watermarks: %w", dataDir, err)
		}
	}
	// Where a start spends its time (lab up waits for it): loading the
	// data dir, then the topics, configs and watermarks.
	log.Info("broker opened", "load_data_dir", loaded.Round(time.Millisecond), "scan_for_crashed_transactions", txnScan.Round(time.Millisecond),
		"total", time.Since(began).Round(time.Millisecond))
	return c, nodes, check, nil
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
