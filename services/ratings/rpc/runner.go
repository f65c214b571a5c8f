package rpc

import (
	"context"
	"flag"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/lib/breaker"
	"github.com/ratingslab/lab/services/lib/metricname"
	"github.com/ratingslab/lab/services/lib/serve"
	"github.com/ratingslab/lab/services/lib/variantname"
	moviesrpc "github.com/ratingslab/lab/services/movies/rpc"
)

// Runner is the ratings-rpc part: `lab serve ratings-rpc`.
type Runner struct {
	Listen serve.Listen
	Data   string
	Sync   string
	Movies breaker.Upstream
}

// DefaultMoviesSettings: movies-rpc answers from a local SQLite file in about
// a millisecond; 500ms leaves room for load while staying well inside
// webserver-rpc's own 1s timeout for the whole rating.
func DefaultMoviesSettings() breaker.Settings {
	s := breaker.DefaultSettings()
	s.Timeout = 500 * time.Millisecond
	return s
}

// MoviesUpstream is movies-rpc at url (in the lab: its edge proxy) as
// ratings-rpc calls it.
func MoviesUpstream(url string, settings breaker.Settings) breaker.Upstream {
	return breaker.Upstream{Name: "movies-rpc", URLFlag: "movies-url", URL: url, Settings: settings}
}

func (r *Runner) Flags(fs *flag.FlagSet) {
	r.Listen.Flags(fs, "127.0.0.1:7711", "the ratings API")
	fs.StringVar(&r.Data, "data", ".lab/data/ratings-rpc", "directory of the ratings store (ratings.db)")
	fs.StringVar(&r.Sync, "sync", string(SyncNormal), "store durability: normal (survives kill) or full (fsync per commit, survives power loss)")
	r.Movies = MoviesUpstream("http://127.0.0.1:7712", DefaultMoviesSettings())
	r.Movies.Flags(fs)
}

func (r *Runner) Run(ctx context.Context, log *slog.Logger) error {
	store, err := OpenStore(r.Data, SyncMode(r.Sync))
	if err != nil {
		return err
	}
	defer store.Close()
	srv, err := NewServer(store, r.Movies, prometheus.NewRegistry(), log)
	if err != nil {
		return err
	}
	log.Info("ratings-rpc starting", "movies_url", r.Movies.URL, "store", store.Path(), "breakers", r.Movies.Settings.Enabled)
	return srv.Run(ctx, r.Listen)
}

// NewServer assembles ratings-rpc's HTTP tree: the API over store and
// movies-rpc, /healthz (store readable, breaker settings and state),
// /metrics, admin faults and GET /admin/config.
func NewServer(store *Store, movies breaker.Upstream, reg *prometheus.Registry, log *slog.Logger) (*serve.Server, error) {
	api, dep, err := movies.Connect(reg, log)
	if err != nil {
		return nil, err
	}
	// Read at scrape time: nothing on the write path.
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: metricname.StoreCommitsTotal,
			Help: "Transactions the ratings store committed (group commit: concurrent ratings share one)."},
			func() float64 { b, _ := store.writes.Batches(); return float64(b) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: metricname.StoreCommitWritesTotal,
			Help: "Ratings those transactions held, repeats included; divided by lab_store_commits_total, the mean batch."},
			func() float64 { _, n := store.writes.Batches(); return float64(n) }),
	)
	srv := serve.New(serve.Options{
		Public:   New(store, moviesrpc.NewClient(api), log),
		Registry: reg,
		Ready:    store.Ping, // movies-rpc down degrades ratings-rpc; it does not make it unready
		Info: func() map[string]any {
			return map[string]any{"variant": variantname.RPC, "store": store.Path(), "movies_url": movies.URL, "breakers": breaker.Describe(dep)}
		},
		AdminConfig: true,
		Log:         log,
	})
	breaker.RegisterAdmin(srv, dep)
	return srv, nil
}
