package webserver

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/ratingslab/lab/services/lib/serve"
)

// writeJSON answers as every part's JSON API does, marked not cacheable:
// counts and averages change from one moment to the next.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Cache-Control", "no-store")
	serve.WriteJSON(w, status, v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, ErrorBody{Error: msg})
}

// writeUnavailable answers 503 with retry_after in the body and the
// Retry-After header (whole seconds, rounded up, as HTTP wants).
func writeUnavailable(w http.ResponseWriter, msg string, retryAfter time.Duration) {
	secs := retryAfter.Seconds()
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(secs))))
	writeJSON(w, http.StatusServiceUnavailable, ErrorBody{Error: msg, RetryAfter: &secs})
}

// outcomeUnknown reports whether a failed Rate may still have recorded the
// rating: the backend said so, or it was still working when the handler's
// own timeout (or the client) ended it — a backend that knows it did nothing
// says so with an *UnavailableError.
func outcomeUnknown(err error) bool {
	var unavailable *UnavailableError
	if errors.As(err, &unavailable) {
		return unavailable.OutcomeUnknown
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// writeOutcomeUnknown answers 504 {"error", "retry_after", "outcome":
// "unknown"}: the rating may or may not be applied; a retry with the same
// request_id applies it at most once (docs/api.md).
func (s *server) writeOutcomeUnknown(w http.ResponseWriter, err error, what string) {
	retry := s.opts.RetryAfter
	var unavailable *UnavailableError
	if errors.As(err, &unavailable) && unavailable.RetryAfter > 0 {
		retry = unavailable.RetryAfter
	}
	secs := retry.Seconds()
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(secs))))
	writeJSON(w, http.StatusGatewayTimeout, ErrorBody{
		Error:      what + ": outcome unknown (it may or may not be applied; retry with the same request_id): " + err.Error(),
		RetryAfter: &secs, Outcome: OutcomeUnknown,
	})
}

// writeBackendError maps a Backend error to the API's status codes. what
// names the operation for the log and the client ("rating movie 7").
func (s *server) writeBackendError(w http.ResponseWriter, r *http.Request, err error, what string) {
	var unavailable *UnavailableError
	var refused *RefusedError
	switch {
	case errors.As(err, &refused):
		writeError(w, http.StatusInternalServerError, what+": "+refused.Error())
	case errors.As(err, &unavailable):
		retry := unavailable.RetryAfter
		if retry <= 0 {
			retry = s.opts.RetryAfter
		}
		writeUnavailable(w, what+": "+err.Error(), retry)
	case errors.Is(err, context.DeadlineExceeded):
		writeUnavailable(w, what+": backend did not answer within "+s.opts.BackendTimeout.String(), s.opts.RetryAfter)
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads this answer, but the metric sees 503.
		writeUnavailable(w, what+": request cancelled", s.opts.RetryAfter)
	default:
		s.log.LogAttrs(r.Context(), slog.LevelError, "backend error", slog.String("op", what), slog.Any("err", err))
		writeError(w, http.StatusInternalServerError, what+": internal error")
	}
}

func methodNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use "+allow)
	})
}

func notFound() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such route: "+r.Method+" "+truncate(r.URL.Path, 100))
	})
}
