package breaker

import (
	"fmt"
	"net/http"

	"github.com/ratingslab/lab/services/lib/serve"
)

// Resilience is a runtime change of a part's outbound call settings, the
// body of POST /admin/resilience: absent fields stay as they are.
type Resilience struct {
	Breakers *string `json:"breakers,omitempty"` // "on" | "off"
	Retries  *int    `json:"retries,omitempty"`  // 0..MaxRetries
}

// Validate names the first bad field.
func (r Resilience) Validate() error {
	if r.Breakers != nil && *r.Breakers != "on" && *r.Breakers != "off" {
		return fmt.Errorf("breakers: want on or off, got %q", *r.Breakers)
	}
	if r.Retries != nil && (*r.Retries < 0 || *r.Retries > MaxRetries) {
		return fmt.Errorf("retries: want 0..%d, got %d", MaxRetries, *r.Retries)
	}
	return nil
}

// Apply edits s.
func (r Resilience) Apply(s *Settings) {
	if r.Breakers != nil {
		s.Enabled = *r.Breakers == "on"
	}
	if r.Retries != nil {
		s.Retries = *r.Retries
	}
}

// RegisterAdmin adds the runtime switch of deps' breakers and retries to
// srv's admin listener (the lab's control API calls it; `lab rpc`):
//
//	GET  /admin/resilience                          every dependency's settings, breaker states, pool
//	POST /admin/resilience {"breakers":"off","retries":2}   changes them; breakers start afresh
func RegisterAdmin(srv *serve.Server, deps ...*Dependency) {
	srv.HandleAdmin("GET /admin/resilience", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serve.WriteJSON(w, http.StatusOK, Describe(deps...))
	}))
	srv.HandleAdmin("POST /admin/resilience", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req Resilience
		if err := serve.DecodeJSON(w, r, &req); err != nil {
			serve.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		if err := req.Validate(); err != nil {
			serve.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		for _, d := range deps {
			if _, err := d.Update(req.Apply); err != nil {
				serve.WriteError(w, http.StatusBadRequest, err.Error())
				return
			}
		}
		serve.WriteJSON(w, http.StatusOK, Describe(deps...))
	}))
}
