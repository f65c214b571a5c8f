package serve

import (
	"context"
	"net/http"
)

// handleHealth answers 200 {"status":"ok",...} or 503
// {"status":"unavailable","error":...} ("failed" for a Permanent error), plus the part's Info and any active faults.
func (s *Server) handleHealth() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := map[string]any{}
		if s.opts.Info != nil {
			for k, v := range s.opts.Info() {
				body[k] = v
			}
		}
		if s.opts.Public != nil { // parts without a public API have no bulkhead to show
			body["limits"] = s.bulkhead.limits.Info()
		}
		if f := s.faults.Current(); f.Active() {
			body["faults"] = f
		}
		status := http.StatusOK
		body["status"] = "ok"
		delete(body, "error")
		if s.opts.Ready != nil {
			ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
			err := s.opts.Ready(ctx)
			cancel()
			if err != nil {
				status = http.StatusServiceUnavailable
				body["status"] = "unavailable"
				if IsPermanent(err) {
					body["status"] = "failed" // no waiting fixes it: see Permanent
				}
				body["error"] = err.Error()
			}
		}
		writeJSON(w, status, body)
	})
}

// writeJSON is WriteJSON marked not cacheable: health and admin answers
// change from one moment to the next.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Cache-Control", "no-store")
	WriteJSON(w, status, v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
