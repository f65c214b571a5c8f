package rpc

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/breaker"
	ratingsrpc "github.com/ratingslab/lab/services/ratings/rpc"
	"github.com/ratingslab/lab/services/serve"
	"github.com/ratingslab/lab/services/webserver"
)

// Runner is the webserver-rpc part: `lab serve webserver-rpc`.
type Runner struct {
	Listen     string
	RatingsURL string
	MaxConns   int
	Ratings    breaker.Settings // the ratings-rpc dependency
}

// DefaultRatingsSettings: one attempt of 1s covers ratings-rpc's own
// 500ms call to movies-rpc plus its store commit, so when movies-rpc is slow
// ratings-rpc answers 503 before webserver-rpc gives up on it.
func DefaultRatingsSettings() breaker.Settings {
	s := breaker.DefaultSettings()
	s.Timeout = time.Second
	return s
}

func (r *Runner) Flags(fs *flag.FlagSet) {
	fs.StringVar(&r.Listen, "listen", "127.0.0.1:7710", "HTTP address: public API and page, /healthz, /metrics, /admin/")
	fs.StringVar(&r.RatingsURL, "ratings-url", "http://127.0.0.1:7711", "base URL of ratings-rpc (in the lab: its edge proxy)")
	fs.IntVar(&r.MaxConns, "max-conns", breaker.DefaultMaxConnsPerHost, "connection pool cap to ratings-rpc")
	r.Ratings = DefaultRatingsSettings()
	r.Ratings.Flags(fs)
}

func (r *Runner) Run(ctx context.Context, log *slog.Logger) error {
	srv, err := NewServer(r.RatingsURL, r.Ratings, breaker.ClientOptions{MaxConnsPerHost: r.MaxConns}, prometheus.NewRegistry(), log)
	if err != nil {
		return err
	}
	log.Info("webserver-rpc starting", "ratings_url", r.RatingsURL, "breakers", r.Ratings.Enabled)
	return srv.Run(ctx, r.Listen)
}

// NewServer assembles webserver-rpc's HTTP tree: the public API and page
// over ratings-rpc at ratingsURL, /healthz (with breaker settings and
// state), /metrics, admin faults and GET /admin/config.
func NewServer(ratingsURL string, settings breaker.Settings, pool breaker.ClientOptions, reg *prometheus.Registry, log *slog.Logger) (*serve.Server, error) {
	dep, err := breaker.New("ratings-rpc", settings, breaker.NewMetrics(reg), log)
	if err != nil {
		return nil, err
	}
	client, err := ratingsrpc.NewClient(ratingsURL, breaker.NewHTTPClient(pool), dep)
	if err != nil {
		return nil, fmt.Errorf("--ratings-url: %w", err)
	}
	backend := NewBackend(client, dep)
	info := func() map[string]any {
		return map[string]any{"variant": "rpc", "ratings_url": ratingsURL, "breakers": breaker.Describe(dep)}
	}
	srv := serve.New(serve.Options{
		Public: webserver.New(backend, webserver.Options{
			Variant:        "rpc",
			AcceptedStatus: http.StatusCreated,
			// The web layer's guard sits just above everything the breaker
			// may spend (all attempts and backoffs), so it never fires first.
			BackendTimeout: settings.Budget() + 250*time.Millisecond,
		}, log),
		Registry: reg,
		Ready:    backend.Ready,
		Info:     info,
		Log:      log,
	})
	srv.HandleAdmin("GET /admin/config", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(info())
	}))
	return srv, nil
}
