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
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/ratingslab/lab/services/metricname"
	"github.com/ratingslab/lab/services/model"
	"github.com/ratingslab/lab/services/serve"
)

// Topics are created at start when missing: the lab's topics, model.Topics.
var Topics = model.Topics

// Runner is the `lab serve broker` process.
type Runner struct {
	listen          string
	admin           serve.Listen
	dataDir         string
	compactInterval time.Duration
	syncWrites      bool
}

func (r *Runner) Flags(fs *flag.FlagSet) {
	fs.StringVar(&r.listen, "listen", "127.0.0.1:9092", "Kafka listener `address` (loopback only; also the advertised address); a comma-separated list runs one node per address (a multi-node embedded cluster)")
	fs.StringVar(&r.admin.Admin, "admin-listen", "", "admin HTTP `address`: /healthz (Kafka readiness and the data dir check), /metrics, /debug/pprof/, the protocol faults at /admin/kafka/faults (default 127.0.0.1 at the first --listen port + 64)")
	fs.StringVar(&r.admin.Allow, "admin-allow", "", "who may use the admin listener besides loopback (see 'lab serve webserver-rpc --help')")
	fs.StringVar(&r.dataDir, "data", "", "data `dir`ectory; records, topics and group offsets persist here (empty: in memory only)")
	fs.DurationVar(&r.compactInterval, "compact-interval", 5*time.Second, "how often compacted topics are cleaned (log.cleaner.backoff.ms)")
	fs.BoolVar(&r.syncWrites, "sync-writes", false, "fsync every produced batch (default: OS page cache, like Kafka's default; survives a process kill, not a power cut)")
}

func (r *Runner) Run(ctx context.Context, log *slog.Logger) error {
	addrs := strings.Split(r.listen, ",")
	admin, err := serve.Listen{Public: addrs[0], Admin: r.admin.Admin}.AdminAddr()
	if err != nil {
		return err
	}
	c, nodes, check, err := OpenNodes(addrs, r.dataDir, r.compactInterval, r.syncWrites, log)
	if err != nil {
		return err
	}
	faults := NewKafkaFaults(c, nodes, log)
	reportCheck(log, check)
	reg := prometheus.NewRegistry()
	lost := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: metricname.BrokerLostRecords,
		Help: "Records the broker held before its last restart and no longer holds (data dir check at start), by topic.",
	}, []string{"topic"})
	reg.MustRegister(lost)
	for _, t := range Topics {
		lost.WithLabelValues(t.Name).Set(0)
	}
	for _, l := range check.Lost {
		lost.WithLabelValues(l.Topic).Add(float64(l.Had - l.Has))
	}
	srv := serve.New(serve.Options{
		Registry: reg,
		Ready:    func(ctx context.Context) error { return Ready(ctx, addrs[0]) },
		Info: func() map[string]any {
			info := map[string]any{"listen": r.listen, "data": r.dataDir, "data_check": check, "nodes": len(addrs), "kafka_faults": len(faults.Active())}
			if w := check.Warning(); w != "" {
				info["warning"] = w
			}
			return info
		},
		Log: log,
	})
	RegisterKafkaFaults(srv.HandleAdmin, faults)
	log.Info("broker ready", "listen", r.listen, "nodes", len(addrs), "admin", admin, "data", r.dataDir)
	var wg sync.WaitGroup
	if r.dataDir != "" {
		wg.Go(func() { keepWatermarks(ctx, c, r.dataDir, time.Second, log) })
	}
	err = srv.Run(ctx, serve.Listen{Admin: admin, Allow: r.admin.Allow})
	wg.Wait()
	faults.HealAll()
	c.Close()
	log.Info("broker stopped")
	if err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// reportCheck logs what the data dir check found, loudly when data was lost.
func reportCheck(log *slog.Logger, d DataCheck) {
	for _, l := range d.Lost {
		log.Error("DATA LOST: the partition ends below where it ended before the restart (truncated or damaged data dir)",
			"topic", l.Topic, "partition", l.Partition, "had_high_watermark", l.Had, "has_high_watermark", l.Has, "lost_records", l.Had-l.Has)
	}
	for _, m := range d.Damaged {
		log.Error("DATA DAMAGED: kfake dropped corrupt data while loading the data dir", "detail", m)
	}
	for _, t := range d.Recreated {
		log.Warn("topic was recreated since the watermarks were recorded; not compared", "topic", t)
	}
	for _, t := range d.CrashAbortedTxns {
		log.Warn("a transaction the crash left open is aborted: its abort marker is written now", "transaction", t)
	}
	for _, f := range d.ConfigsFixed {
		log.Warn("topic config brought in line with the lab's topic table", "config", f)
	}
	if d.Warning() == "" && !d.Baseline.IsZero() {
		log.Info("data dir checked: every partition reaches its recorded watermark", "recorded", d.Baseline.Format(time.RFC3339))
	}
}

// Start runs a broker on listen (host must be loopback) and creates the lab's
// topics that do not exist yet (Open without the report).
func Start(listen, dataDir string, compactInterval time.Duration, syncWrites bool) (*kfake.Cluster, error) {
	c, _, err := Open(listen, dataDir, compactInterval, syncWrites, slog.New(slog.DiscardHandler))
	return c, err
}

// Open runs a broker on listen (host must be loopback), loads dataDir and
// checks it against the watermarks recorded there, creates the lab's topics
// that do not exist yet and fixes the configs of those that do.
func Open(listen, dataDir string, compactInterval time.Duration, syncWrites bool, log *slog.Logger) (*kfake.Cluster, DataCheck, error) {
	c, _, check, err := OpenNodes([]string{listen}, dataDir, compactInterval, syncWrites, log)
	return c, check, err
}

// StartNodes is Start for a cluster of one node per address (see OpenNodes).
func StartNodes(listens []string, dataDir string, compactInterval time.Duration, syncWrites bool) (*kfake.Cluster, *nodeListeners, error) {
	c, nodes, _, err := OpenNodes(listens, dataDir, compactInterval, syncWrites, slog.New(slog.DiscardHandler))
	return c, nodes, err
}

// OpenNodes is Open for a cluster of one node per address: kfake nodes
// 0..n-1 in one process, sharing one log (no replication: a lost node loses
// no data, its partitions move). It returns the nodes' listeners too (node
// loss closes the connections a node accepted).
func OpenNodes(listens []string, dataDir string, compactInterval time.Duration, syncWrites bool, log *slog.Logger) (*kfake.Cluster, *nodeListeners, DataCheck, error) {
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
	nodes := newNodeListeners(listens)
	klog := &kfakeLog{log: log, loading: true}
	opts := []kfake.Opt{
		kfake.NumBrokers(len(listens)),
		kfake.Ports(ports...),
		kfake.ClusterID("ratings-lab"),
		kfake.ListenFn(nodes.listen),
		kfake.BrokerConfigs(map[string]string{"log.cleaner.backoff.ms": strconv.FormatInt(compactInterval.Milliseconds(), 10)}),
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
