package connect

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/ratingslab/lab/services/movies/legacydb"
	"github.com/ratingslab/lab/services/serve"
)

// registerAdmin adds the "slow legacy DB" fault, the same endpoint movies-rpc
// has (used by `lab chaos inject slow_db`):
//
//	POST   /admin/slow-db {"delay":"500ms"}   every catalog query waits that long first
//	DELETE /admin/slow-db                     heals
//	GET    /admin/slow-db                     shows the delay
//
// db is nil when the catalog could not be opened; the endpoint then says so.
func registerAdmin(srv *serve.Server, db *legacydb.DB, log *slog.Logger) {
	reply := func(w http.ResponseWriter, code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	withDB := func(fn func(http.ResponseWriter, *http.Request)) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if db == nil {
				reply(w, http.StatusServiceUnavailable, map[string]string{"error": "the legacy catalog is not open (see /healthz)"})
				return
			}
			fn(w, r)
		})
	}
	show := func(w http.ResponseWriter) {
		reply(w, http.StatusOK, map[string]string{"delay": db.QueryDelay().String()})
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
			reply(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		d, err := time.ParseDuration(req.Delay)
		if err != nil || d < 0 || d > serve.MaxFaultLatency {
			reply(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("delay: want a duration from 0s to %s such as \"500ms\", got %q", serve.MaxFaultLatency, req.Delay)})
			return
		}
		db.SetQueryDelay(d)
		log.Info("slow-db fault set", "delay", d)
		show(w)
	}))
}
