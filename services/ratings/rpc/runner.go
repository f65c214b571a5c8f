package rpc

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/breaker"
	moviesrpc "github.com/ratingslab/lab/services/movies/rpc"
	"github.com/ratingslab/lab/services/serve"
)

// Runner is the ratings-rpc part: `lab serve ratings-rpc`.
type Runner struct {
	Listen    string
	MoviesURL string
	Data      string
	Sync      string
	MaxConns  int
	Movies    breaker.Settings // the movies-rpc dependency
}

// DefaultMoviesSettings: movies-rpc answers from a local SQLite file in about
// a millisecond; 500ms leaves room for load while staying well inside
// webserver-rpc's own 1s timeout for the whole rating.
func DefaultMoviesSettings() breaker.Settings {
	s := breaker.DefaultSettings()
	s.Timeout = 500 * time.Millisecond
	return s
}

func (r *Runner) Flags(fs *flag.FlagSet) {
	fs.StringVar(&r.Listen, "listen", "127.0.0.1:7711", "HTTP address: API, /healthz, /metrics, /admin/")
	fs.StringVar(&r.MoviesURL, "movies-url", "http://127.0.0.1:7712", "base URL of movies-rpc (in the lab: its edge proxy)")
	fs.StringVar(&r.Data, "data", ".lab/data/ratings-rpc", "directory of the ratings store (ratings.db)")
	fs.StringVar(&r.Sync, "sync", string(SyncNormal), "store durability: normal (survives kill) or full (fsync per commit, survives power loss)")
	fs.IntVar(&r.MaxConns, "max-conns", breaker.DefaultMaxConnsPerHost, "connection pool cap to movies-rpc")
	r.Movies = DefaultMoviesSettings()
	r.Movies.Flags(fs)
}

func (r *Runner) Run(ctx context.Context, log *slog.Logger) error {
	store, err := OpenStore(r.Data, SyncMode(r.Sync))
	if err != nil {
		return err
	}
	defer store.Close()
	srv, err := NewServer(store, r.MoviesURL, r.Movies, breaker.ClientOptions{MaxConnsPerHost: r.MaxConns}, prometheus.NewRegistry(), log)
	if err != nil {
		return err
	}
	log.Info("ratings-rpc starting", "movies_url", r.MoviesURL, "store", store.Path(), "breakers", r.Movies.Enabled)
	return srv.Run(ctx, r.Listen)
}

// NewServer assembles ratings-rpc's HTTP tree: the API over store and
// movies-rpc at moviesURL, /healthz (store readable, breaker settings and
// state), /metrics, admin faults and GET /admin/config.
func NewServer(store *Store, moviesURL string, settings breaker.Settings, pool breaker.ClientOptions, reg *prometheus.Registry, log *slog.Logger) (*serve.Server, error) {
	dep, err := breaker.New("movies-rpc", settings, breaker.NewMetrics(reg), log)
	if err != nil {
		return nil, err
	}
	movies, err := moviesrpc.NewClient(moviesURL, breaker.NewHTTPClient(pool), dep)
	if err != nil {
		return nil, fmt.Errorf("--movies-url: %w", err)
	}
	info := func() map[string]any {
		return map[string]any{"variant": "rpc", "store": store.Path(), "movies_url": moviesURL, "breakers": breaker.Describe(dep)}
	}
	srv := serve.New(serve.Options{
		Public:   New(store, movies, log),
		Registry: reg,
		Ready:    store.Ping, // movies-rpc down degrades ratings-rpc; it does not make it unready
		Info:     info,
		Log:      log,
	})
	srv.HandleAdmin("GET /admin/config", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, info())
	}))
	return srv, nil
}
