// Package broker is the `lab serve broker` part: the embedded Kafka broker
// (services/lib/kafkaio/embedded) with its admin listener — health with the data
// dir check, metrics, and the protocol faults (kafkafaults.go).
package broker

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/lib/kafkaio/embedded"
	"github.com/ratingslab/lab/services/lib/metricname"
	"github.com/ratingslab/lab/services/lib/serve"
)

// Runner is the `lab serve broker` process.
type Runner struct {
	listen          string
	admin           serve.Listen
	dataDir         string
	compactInterval time.Duration
	dirtyRatio      float64
	syncWrites      bool
}

func (r *Runner) Flags(fs *flag.FlagSet) {
	fs.StringVar(&r.listen, "listen", "127.0.0.1:9092", "Kafka listener `address` (loopback only; also the advertised address); a comma-separated list runs one node per address (a multi-node embedded cluster)")
	fs.StringVar(&r.admin.Admin, "admin-listen", "", "admin HTTP `address`: /healthz (Kafka readiness and the data dir check), /metrics, /debug/pprof/, the protocol faults at /admin/kafka/faults (default 127.0.0.1 at the first --listen port + 64)")
	fs.StringVar(&r.admin.Allow, "admin-allow", "", "who may use the admin listener besides loopback (see 'lab serve webserver-rpc --help')")
	fs.StringVar(&r.dataDir, "data", "", "data `dir`ectory; records, topics and group offsets persist here (empty: in memory only)")
	fs.DurationVar(&r.compactInterval, "compact-interval", 5*time.Second, "how often the log cleaner checks the compacted topics and applies retention (log.cleaner.backoff.ms)")
	fs.Float64Var(&r.dirtyRatio, "min-cleanable-dirty-ratio", embedded.DefaultDirtyRatio, "the log cleaner compacts when at least this `fraction` of the compacted topics' bytes were written since their last clean (log.cleaner.min.cleanable.ratio)")
	fs.BoolVar(&r.syncWrites, "sync-writes", false, "fsync every produced batch (default: OS page cache, like Kafka's default; survives a process kill, not a power cut)")
}

func (r *Runner) Run(ctx context.Context, log *slog.Logger) error {
	addrs := strings.Split(r.listen, ",")
	if r.compactInterval <= 0 {
		return fmt.Errorf("--compact-interval %v: want a positive duration, e.g. 5s", r.compactInterval)
	}
	if !(r.dirtyRatio > 0 && r.dirtyRatio <= 1) {
		return fmt.Errorf("--min-cleanable-dirty-ratio %v: want a fraction in (0, 1], e.g. 0.5", r.dirtyRatio)
	}
	admin, err := serve.Listen{Public: addrs[0], Admin: r.admin.Admin}.AdminAddr()
	if err != nil {
		return err
	}
	c, nodes, check, err := embedded.OpenNodes(addrs, r.dataDir, r.syncWrites, log)
	if err != nil {
		return err
	}
	cleaner, err := embedded.NewCleaner(c, addrs[0], r.dataDir, r.dirtyRatio, log)
	if err != nil {
		c.Close()
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
	for _, t := range embedded.Topics {
		lost.WithLabelValues(t.Name).Set(0)
	}
	for _, l := range check.Lost {
		lost.WithLabelValues(l.Topic).Add(float64(l.Had - l.Has))
	}
	watchCleaner(reg, cleaner, log)
	srv := serve.New(serve.Options{
		Registry: reg,
		Ready:    func(ctx context.Context) error { return embedded.Ready(ctx, addrs[0]) },
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
	cleanCtx, stopCleaner := context.WithCancel(ctx)
	wg.Go(func() { cleaner.Run(cleanCtx, r.compactInterval) })
	if r.dataDir != "" {
		wg.Go(func() { embedded.KeepWatermarks(ctx, c, r.dataDir, time.Second, log) })
	}
	err = srv.Run(ctx, serve.Listen{Admin: admin, Allow: r.admin.Allow})
	stopCleaner() // also when the admin listener failed: c.Close waits for no cleaner
	wg.Wait()
	faults.HealAll()
	c.Close()
	log.Info("broker stopped")
	if err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// watchCleaner exports the log cleaner's runs and logs each one: how long
// it held the broker's request loop is how long a Produce waited.
func watchCleaner(reg prometheus.Registerer, cl *embedded.Cleaner, log *slog.Logger) {
	runs := prometheus.NewCounter(prometheus.CounterOpts{
		Name: metricname.BrokerLogCleanerRunsTotal,
		Help: "Compactions of the compacted topics (each runs when their dirty bytes reach the min cleanable dirty ratio).",
	})
	held := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    metricname.BrokerLogCleanerHeldSeconds,
		Help:    "How long each compaction held the broker's request loop (kfake compacts inside it: produces wait meanwhile).",
		Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	})
	dirty := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: metricname.BrokerLogCleanerDirtyRatio,
		Help: "Bytes of the compacted topics written since their last clean, as a fraction of their bytes, at the cleaner's last check.",
	})
	reg.MustRegister(runs, held, dirty)
	cl.OnCheck = func(c embedded.Check) { dirty.Set(c.DirtyRatio) }
	cl.OnClean = func(run embedded.CleanRun) {
		runs.Inc()
		held.Observe(run.Held.Seconds())
		log.Info("log cleaner compacted the compacted topics", "dirty_ratio", fmt.Sprintf("%.2f", run.DirtyRatio), "partitions", run.Partitions,
			"bytes_before", run.BytesBefore, "bytes_after", run.BytesAfter, "held_request_loop", run.Held.Round(time.Millisecond))
	}
}

// reportCheck logs what the data dir check found, loudly when data was lost.
func reportCheck(log *slog.Logger, d embedded.DataCheck) {
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
