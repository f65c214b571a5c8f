package rpc

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/movies/legacydb"
	"github.com/ratingslab/lab/services/serve"
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
			info := map[string]any{"variant": "rpc", "legacy_db": db.Path()}
			if d := db.QueryDelay(); d > 0 {
				info["slow_db"] = d.String()
			}
			return info
		},
		Log: log,
	})
	registerSlowDB(srv, db, log)
	return srv
}

// registerSlowDB adds the "slow legacy DB" fault:
//
//	POST   /admin/slow-db {"delay":"500ms"}   every catalog query waits that long first
//	DELETE /admin/slow-db                     heals
//	GET    /admin/slow-db                     shows the delay
func registerSlowDB(srv *serve.Server, db *legacydb.DB, log *slog.Logger) {
	show := func(w http.ResponseWriter) {
		serve.WriteJSON(w, http.StatusOK, map[string]string{"delay": db.QueryDelay().String()})
	}
	srv.HandleAdmin("GET /admin/slow-db", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { show(w) }))
	srv.HandleAdmin("DELETE /admin/slow-db", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		db.SetQueryDelay(0)
		log.Info("slow-db fault healed")
		show(w)
	}))
	srv.HandleAdmin("POST /admin/slow-db", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Delay string `json:"delay"`
		}
		if err := serve.DecodeJSON(w, r, &req); err != nil {
			serve.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		d, err := time.ParseDuration(req.Delay)
		if err != nil || d < 0 || d > serve.MaxFaultLatency {
			serve.WriteError(w, http.StatusBadRequest, fmt.Sprintf("delay: want a duration from 0s to %s such as \"500ms\", got %q", serve.MaxFaultLatency, req.Delay))
			return
		}
		db.SetQueryDelay(d)
		log.Info("slow-db fault set", "delay", d)
		show(w)
	}))
}
