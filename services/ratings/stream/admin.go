package stream

import (
	"fmt"
	"net/http"
	"time"

	"github.com/ratingslab/lab/services/lib/serve"
)

// registerAdmin adds the processor's in-service fault, the consumer
// throttle (used by `lab chaos inject throttle`):
//
//	POST   /admin/throttle {"delay":"1s"}   sleep that long before every batch, of at most ThrottledMaxBatch ratings
//	DELETE /admin/throttle                  heals
//	GET    /admin/throttle                  shows the delay
//
// Like every /admin/ endpoint it answers loopback clients only.
func registerAdmin(srv *serve.Server, p *Processor) {
	show := func(w http.ResponseWriter) {
		writeJSON(w, http.StatusOK, map[string]string{"delay": p.Throttle().String()})
	}
	srv.HandleAdmin("GET /admin/throttle", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { show(w) }))
	srv.HandleAdmin("DELETE /admin/throttle", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.SetThrottle(0)
		show(w)
	}))
	srv.HandleAdmin("POST /admin/throttle", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Delay string `json:"delay"`
		}
		if err := serve.DecodeJSON(w, r, &req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		d, err := time.ParseDuration(req.Delay)
		if err != nil || d < 0 || d > serve.MaxFaultLatency {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("delay: want a duration from 0s to %s such as \"1s\", got %q", serve.MaxFaultLatency, req.Delay)})
			return
		}
		p.SetThrottle(d)
		show(w)
	}))
}
