package stream

import (
	"context"
	"flag"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/lib/eventformat"
	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/serve"
	"github.com/ratingslab/lab/services/lib/variantname"
	"github.com/ratingslab/lab/services/webserver"
)

// Runner is the `lab serve webserver-stream` process.
type Runner struct {
	listen         serve.Listen
	data           string
	produceTimeout time.Duration
	retryHorizon   time.Duration
	topicWait      time.Duration
	kafka          kafkaio.Config
	format         eventformat.Config
}

func (r *Runner) Flags(fs *flag.FlagSet) {
	r.listen.Flags(fs, "127.0.0.1:7720", "the public API and page")
	fs.StringVar(&r.data, "data", "", "data `dir`ectory of the embedded view (required)")
	fs.DurationVar(&r.produceTimeout, "produce-timeout", 2*time.Second, "how long POST /api/ratings waits for the broker's acknowledgement before answering 503 (not in the log) or 504 (outcome unknown)")
	fs.DurationVar(&r.retryHorizon, "retry-horizon", DefaultRetryHorizon, "how long after a first attempt with an unknown outcome (504) a retry with the same request_id is produced again; later it is 409. Keep it below ratings-stream's --request-id-retention")
	fs.DurationVar(&r.topicWait, "topic-wait", 30*time.Second, "how long to wait at start for the topics before giving up")
	r.kafka.RegisterFlags(fs)
	r.format.RegisterFlags(fs)
}

func (r *Runner) Run(ctx context.Context, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	codec, err := r.format.Codec(reg)
	if err != nil {
		return err
	}
	r.kafka.ClientID = "webserver-stream"
	k, err := kafkaio.NewCluster(r.kafka, kafkaio.NewMetrics(reg), log)
	if err != nil {
		return err
	}
	defer k.Close()
	b, err := NewBackend(Config{Cluster: k, DataDir: r.data, ProduceTimeout: r.produceTimeout, RetryHorizon: r.retryHorizon,
		TopicWait: kafkaio.TopicWait{Timeout: r.topicWait}, Codec: codec, Registerer: reg, Log: log})
	if err != nil {
		return err
	}
	defer b.Close()
	srv := NewServer(b, reg, log)
	webserver.RegisterContractAdmin(srv, contracts{codec})

	// On failure stay up: /healthz says why, and GETs serve the view from disk.
	return srv.RunAlongside(ctx, r.listen, b.Run,
		"cannot reach the log; serving the stored view and /healthz with the reason until stopped")
}

// NewServer is webserver-stream's HTTP tree: the shared public API and page
// over b (202 for an accepted rating), /healthz, /metrics and /admin/.
func NewServer(b *Backend, reg *prometheus.Registry, log *slog.Logger) *serve.Server {
	return serve.New(serve.Options{
		Public: webserver.New(b, webserver.Options{
			Variant:        variantname.Stream,
			AcceptedStatus: http.StatusAccepted,
			// Above the produce timeout, so the backend's own 503 or 504
			// (with its reason) answers first.
			BackendTimeout: b.cfg.ProduceTimeout + time.Second,
		}, log),
		Registry: reg,
		Ready:    b.Ready,
		Info:     b.Info,
		Log:      log,
	})
}
