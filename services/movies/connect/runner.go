package connect

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/lib/eventformat"
	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/serve"
	"github.com/ratingslab/lab/services/movies/legacydb"
)

// Runner is the `lab serve movies-connect` process.
type Runner struct {
	listen    serve.Listen
	data      string
	legacyDB  string
	poll      time.Duration
	batch     int
	topicWait time.Duration
	kafka     kafkaio.Config
	format    eventformat.Config
}

func (r *Runner) Flags(fs *flag.FlagSet) {
	r.listen.Flags(fs, "127.0.0.1:7725", "nothing but a JSON 404 (movies-connect has no public API)")
	fs.StringVar(&r.data, "data", "", "data `dir`ectory; the connector's position (source offset) is stored here (required)")
	fs.StringVar(&r.legacyDB, "legacy-db", "", "`path` of the legacy movie catalog (SQLite) to stream (required)")
	fs.DurationVar(&r.poll, "poll-interval", time.Second, "pause between polls of the catalog that found nothing new")
	fs.IntVar(&r.batch, "batch", 500, "most rows per poll and produce")
	fs.DurationVar(&r.topicWait, "topic-wait", 30*time.Second, "how long to wait at start for the movies topic before giving up")
	r.kafka.RegisterFlags(fs)
	r.format.RegisterFlags(fs)
}

func (r *Runner) Run(ctx context.Context, log *slog.Logger) error {
	if r.legacyDB == "" {
		return errors.New("--legacy-db: the path of the legacy catalog is required")
	}
	reg := prometheus.NewRegistry()
	codec, err := r.format.Codec(reg)
	if err != nil {
		return err
	}
	r.kafka.ClientID = "movies-connect"
	k, err := kafkaio.NewCluster(r.kafka, kafkaio.NewMetrics(reg), log)
	if err != nil {
		return err
	}
	defer k.Close()

	var c *Connector
	var startErr error
	var failed atomic.Pointer[error] // why the connector could not start, for /healthz
	db, err := legacydb.Open(r.legacyDB)
	if err == nil {
		defer db.Close()
		c, err = New(Config{Cluster: k, DB: db, DataDir: r.data, PollInterval: r.poll, BatchSize: r.batch,
			TopicWait: kafkaio.TopicWait{Timeout: r.topicWait}, Codec: codec, Log: log})
	}
	if err != nil {
		// Its legacy DB or its position file cannot be used: no waiting
		// fixes that, so /healthz says "failed" and `lab up` stops at once.
		err = serve.Permanent(err)
		startErr = err
		failed.Store(&err)
	}
	ready := func(ctx context.Context) error {
		if err := failed.Load(); err != nil {
			return *err
		}
		return c.Ready(ctx)
	}
	info := func() map[string]any {
		if c == nil {
			return nil
		}
		return c.Info()
	}
	srv := serve.New(serve.Options{Registry: reg, Ready: ready, Info: info, Log: log})
	legacydb.RegisterSlowDB(srv, db, log)

	run := func(ctx context.Context) error {
		if startErr == nil {
			startErr = c.Run(ctx)
		}
		if startErr != nil && ctx.Err() == nil {
			failed.Store(&startErr)
		}
		return startErr
	}
	return srv.RunAlongside(ctx, r.listen, run, "cannot stream the catalog; serving /healthz with the reason until stopped")
}
