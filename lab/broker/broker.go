// Package broker is the `lab serve broker` part: the embedded Kafka broker
// (services/lib/kafkaio/embedded) with its admin listener — health with the data
// dir check, metrics, and the protocol faults (kafkafaults.go).
package broker

import (
	"context"
	"flag"
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
	c, nodes, check, err := embedded.OpenNodes(addrs, r.dataDir, r.compactInterval, r.syncWrites, log)
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
	for _, t := range embedded.Topics {
		lost.WithLabelValues(t.Name).Set(0)
	}
	for _, l := range check.Lost {
		lost.WithLabelValues(l.Topic).Add(float64(l.Had - l.Has))
	}
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
	if r.dataDir != "" {
		wg.Go(func() { embedded.KeepWatermarks(ctx, c, r.dataDir, time.Second, log) })
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
