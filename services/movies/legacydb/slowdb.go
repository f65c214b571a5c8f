package legacydb

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/ratingslab/lab/services/lib/serve"
)

// RegisterSlowDB adds the "slow legacy DB" fault to a part's admin listener,
// the one endpoint movies-rpc and movies-connect share (used by
// `lab chaos inject slow_db`):
//
//	POST   /admin/slow-db {"delay":"500ms"}   every catalog query waits that long first
//	DELETE /admin/slow-db                     heals
//	GET    /admin/slow-db                     shows the delay
//
// db is nil when the part could not open the catalog; the endpoint then
// answers 503 and says so.
func RegisterSlowDB(srv *serve.Server, db *DB, log *slog.Logger) {
	withDB := func(fn func(http.ResponseWriter, *http.Request)) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if db == nil {
				serve.WriteError(w, http.StatusServiceUnavailable, "the legacy catalog is not open (see /healthz)")
				return
			}
			fn(w, r)
		})
	}
	show := func(w http.ResponseWriter) {
		serve.WriteJSON(w, http.StatusOK, map[string]string{"delay": db.QueryDelay().String()})
	}
	srv.HandleAdmin("GET /admin/slow-db", withDB(func(w http.ResponseWriter, r *http.Request) { show(w) }))
	srv.HandleAdmin("DELETE /admin/slow-db", withDB(func(w http.ResponseWriter, r *http.Request) {
		db.SetQueryDelay(0)
		log.Info("slow-db fault healed")
		show(w)
	}))
	srv.HandleAdmin("POST /admin/slow-db", withDB(func(w http.ResponseWriter, r *http.Request) {
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
