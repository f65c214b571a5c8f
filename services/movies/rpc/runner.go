package rpc

import (
	"context"
	"flag"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/lib/serve"
	"github.com/ratingslab/lab/services/lib/variantname"
	"github.com/ratingslab/lab/services/movies/legacydb"
)

// Runner is the movies-rpc part: `lab serve movies-rpc`.
type Runner struct {
	Listen   serve.Listen
	LegacyDB string
}

func (r *Runner) Flags(fs *flag.FlagSet) {
	r.Listen.Flags(fs, "127.0.0.1:7712", "the movies API")
	fs.StringVar(&r.LegacyDB, "legacy-db", ".lab/data/legacy/movies.db", "legacy movie catalog (SQLite); created with the seed catalog if missing")
}

func (r *Runner) Run(ctx context.Context, log *slog.Logger) error {
	db, created, err := legacydb.Create(r.LegacyDB)
	if err != nil {
		return fmt.Errorf("--legacy-db: %w", err)
	}
	defer db.Close()
	if created {
		log.Info("created the legacy catalog with the seed movies", "path", r.LegacyDB)
	}
	srv := NewServer(db, prometheus.NewRegistry(), log)
	return srv.Run(ctx, r.Listen)
}

// NewServer assembles movies-rpc's HTTP tree over db: the API, /healthz
// (the DB file is readable), /metrics, and the admin faults plus
// /admin/slow-db.
func NewServer(db *legacydb.DB, reg *prometheus.Registry, log *slog.Logger) *serve.Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := serve.New(serve.Options{
		Public:   New(db, log),
		Registry: reg,
		Ready:    db.Ping,
		Info: func() map[string]any {
			info := map[string]any{"variant": variantname.RPC, "legacy_db": db.Path()}
			if d := db.QueryDelay(); d > 0 {
				info["slow_db"] = d.String()
			}
			return info
		},
		Log: log,
	})
	legacydb.RegisterSlowDB(srv, db, log)
	return srv
}
