package stream

import (
	"context"
	"flag"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/lib/eventformat"
	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/requestids"
	"github.com/ratingslab/lab/services/lib/serve"
	"github.com/ratingslab/lab/services/model"
)

// Runner is the `lab serve ratings-stream` process.
type Runner struct {
	listen    serve.Listen
	data      string
	delivery  string
	group     string
	txnID     string
	changelog string
	reqIDs    string
	restore   string
	standby   int
	maxBatch  int
	clEvery   time.Duration
	retention time.Duration
	topicWait time.Duration
	kafka     kafkaio.Config
	format    eventformat.Config
}

func (r *Runner) Flags(fs *flag.FlagSet) {
	r.listen.Flags(fs, "127.0.0.1:7721", "GET /state")
	fs.StringVar(&r.data, "data", "", "data `dir`ectory of this instance's embedded database (required)")
	fs.StringVar(&r.delivery, "delivery", string(EffectivelyOnce), "`mode`: effectively-once (state and offsets in one SQLite transaction), at-least-once (offsets committed to the group after processing) or transactional (Kafka transactions: rated-movies, changelog and offsets commit together)")
	fs.StringVar(&r.group, "group", "ratings-stream", "consumer `group` id")
	fs.StringVar(&r.changelog, "changelog", model.TopicRatingsChangelog, "`topic` of the state (transactional, and effectively-once with --restore=changelog): one per consumer group, co-partitioned with ratings, compacted; the request ids counted go to --request-ids-topic")
	fs.StringVar(&r.reqIDs, "request-ids-topic", model.TopicRatingsRequestIDs, "`topic` of the request ids counted, beside --changelog (written in its transactions, restored with it): one per consumer group, co-partitioned with ratings, time-retained (cleanup.policy=delete) with a retention.ms of at least --request-id-retention, or ratings-stream refuses to start")
	fs.StringVar(&r.restore, "restore", RestoreChangelog, "how effectively-once takes partitions over: changelog (write the state to --changelog after each commit; a new owner restores it and reads only the tail of ratings) or log (no changelog: a new owner resumes from its own snapshot or replays the partition from the start, to compare with)")
	fs.IntVar(&r.standby, "standby-replicas", 0, "`N` other instances keep a warm copy of each partition's state by tailing its changelog (Kafka Streams' num.standby.replicas; 0: none); a take-over of a partition this instance has a copy of reads only the changelog written since (effectively-once with --restore=changelog)")
	fs.StringVar(&r.txnID, "transactional-id", "", "transactional `id` of this instance (transactional mode; default: the group id): stable across restarts, unique per instance")
	fs.IntVar(&r.maxBatch, "max-batch", 5000, "most ratings per transaction")
	fs.DurationVar(&r.clEvery, "changelog-interval", 100*time.Millisecond, "how often effectively-once writes each partition's committed changes to --changelog, the batches in between as one transaction (Kafka Streams' commit.interval.ms under exactly-once); 0: after every batch. Acknowledged ratings do not wait for it; a longer interval means fewer broker writes and a longer tail of ratings for a new owner to read")
	fs.DurationVar(&r.retention, "request-id-retention", requestids.DefaultRetention, "how long (in the log's record timestamps) a counted request id is kept to drop a repeat of it; cover kafka-go's produce retries and webserver-stream's --retry-horizon (effectively-once, transactional)")
	fs.DurationVar(&r.topicWait, "topic-wait", 30*time.Second, "how long to wait at start for the topics before giving up")
	r.kafka.RegisterFlags(fs)
	r.format.RegisterFlags(fs)
}

func (r *Runner) Run(ctx context.Context, log *slog.Logger) error {
	delivery, err := ParseDelivery(r.delivery)
	if err != nil {
		return err
	}
	restore, err := ParseRestore(r.restore)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	codec, err := r.format.Codec(reg)
	if err != nil {
		return err
	}
	r.kafka.ClientID = "ratings-stream"
	k, err := kafkaio.NewCluster(r.kafka, kafkaio.NewMetrics(reg), log)
	if err != nil {
		return err
	}
	defer k.Close()
	p, err := New(Config{Cluster: k, DataDir: r.data, Delivery: delivery, Group: r.group, TransactionalID: r.txnID, Changelog: r.changelog, RequestIDs: r.reqIDs, Restore: restore, StandbyReplicas: r.standby, MaxBatch: r.maxBatch, ChangelogInterval: r.clEvery,
		RequestIDRetention: r.retention, Codec: codec, TopicWait: kafkaio.TopicWait{Timeout: r.topicWait}, Registerer: reg, Log: log})
	if err != nil {
		return err
	}
	defer p.Close()
	srv := serve.New(serve.Options{
		Public:   p.Handler(),
		Registry: reg,
		Ready:    p.Ready,
		Info: func() map[string]any {
			info := map[string]any{"delivery": p.Delivery(), "assigned_partitions": p.Assigned(), "throttle": p.Throttle().String(), "format": codec.Format()}
			if delivery == EffectivelyOnce {
				info["restore"] = restore
			}
			if r.standby > 0 {
				info["standby_replicas"] = r.standby
				info["standby_partitions"] = p.StandbyPartitions()
			}
			if r := p.LastRestore(); r != nil {
				info["last_restore"] = r
			}
			return info
		},
		Log: log,
	})
	registerAdmin(srv, p)
	return srv.RunAlongside(ctx, r.listen, p.Run, "cannot run; serving /healthz with the reason until stopped")
}
