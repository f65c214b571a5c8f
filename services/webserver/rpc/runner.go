package rpc

import (
	"context"
	"flag"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/lib/breaker"
	"github.com/ratingslab/lab/services/lib/serve"
	"github.com/ratingslab/lab/services/lib/variantname"
	ratingsrpc "github.com/ratingslab/lab/services/ratings/rpc"
	"github.com/ratingslab/lab/services/webserver"
)

// Runner is the webserver-rpc part: `lab serve webserver-rpc`.
type Runner struct {
	Listen  serve.Listen
	Ratings breaker.Upstream
}

// DefaultRatingsSettings: one attempt of 1s covers ratings-rpc's own
// 500ms call to movies-rpc plus its store commit, so when movies-rpc is slow
// ratings-rpc answers 503 before webserver-rpc gives up on it.
func DefaultRatingsSettings() breaker.Settings {
	s := breaker.DefaultSettings()
	s.Timeout = time.Second
	return s
}

func withMaxRetries(s breaker.Settings) breaker.Settings {
	s.Retries = breaker.MaxRetries
	return s
}

// RatingsUpstream is ratings-rpc at url (in the lab: its edge proxy) as
// webserver-rpc calls it.
func RatingsUpstream(url string, settings breaker.Settings) breaker.Upstream {
	return breaker.Upstream{Name: "ratings-rpc", URLFlag: "ratings-url", URL: url, Settings: settings}
}

func (r *Runner) Flags(fs *flag.FlagSet) {
	r.Listen.Flags(fs, "127.0.0.1:7710", "the public API and page")
	r.Ratings = RatingsUpstream("http://127.0.0.1:7711", DefaultRatingsSettings())
	r.Ratings.Flags(fs)
}

func (r *Runner) Run(ctx context.Context, log *slog.Logger) error {
	srv, err := NewServer(r.Ratings, prometheus.NewRegistry(), log)
	if err != nil {
		return err
	}
	log.Info("webserver-rpc starting", "ratings_url", r.Ratings.URL, "breakers", r.Ratings.Settings.Enabled)
	return srv.Run(ctx, r.Listen)
}

// NewServer assembles webserver-rpc's HTTP tree: the public API and page
// over ratings-rpc, /healthz (with breaker settings and state), /metrics,
// admin faults and GET /admin/config.
func NewServer(ratings breaker.Upstream, reg *prometheus.Registry, log *slog.Logger) (*serve.Server, error) {
	api, dep, err := ratings.Connect(reg, log)
	if err != nil {
		return nil, err
	}
	client := ratingsrpc.NewClient(api)
	backend := NewBackend(client, dep)
	srv := serve.New(serve.Options{
		Public: webserver.New(backend, webserver.Options{
			Variant:        variantname.RPC,
			AcceptedStatus: http.StatusCreated,
			// The web layer's guard sits just above everything the breaker
			// may spend (all attempts and backoffs) with as many retries as
			// `lab breakers --retries` may set at runtime, so it never fires first.
			BackendTimeout: withMaxRetries(ratings.Settings).Budget() + 250*time.Millisecond,
		}, log),
		Registry: reg,
		Ready:    backend.Ready,
		Info: func() map[string]any {
			info := map[string]any{"variant": variantname.RPC, "ratings_url": ratings.URL, "breakers": breaker.Describe(dep)}
			if w := backend.Warning(); w != "" {
				info["warning"] = w
			}
			return info
		},
		AdminConfig: true,
		Log:         log,
	})
	webserver.RegisterContractAdmin(srv, contracts{client})
	breaker.RegisterAdmin(srv, dep)
	return srv, nil
}
