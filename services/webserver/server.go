package webserver

import (
	"log/slog"
	"net/http"
	"time"
)

// Options say how a variant presents the shared API.
type Options struct {
	// Variant names the integration pattern ("rpc", "stream"); the page shows it.
	Variant string
	// AcceptedStatus is the answer to an accepted rating: 201 Created when the
	// rating is applied before answering (rpc), 202 Accepted when it is only
	// durably logged (stream). Zero means 201.
	AcceptedStatus int
	// BackendTimeout bounds every Backend call made for one request, a last
	// guard on top of the backend's own timeouts, so no request hangs longer.
	// Zero means 10s.
	BackendTimeout time.Duration
	// RetryAfter is suggested to clients on 503 when the backend did not say. Zero means 1s.
	RetryAfter time.Duration
}

func (o Options) withDefaults() Options {
	if o.AcceptedStatus == 0 {
		o.AcceptedStatus = http.StatusCreated
	}
	if o.BackendTimeout <= 0 {
		o.BackendTimeout = 10 * time.Second
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = time.Second
	}
	if o.Variant == "" {
		o.Variant = "unnamed"
	}
	return o
}

// New returns the public API and page of one variant, backed by b.
//
// The result is an *http.ServeMux (Go 1.22 patterns), so middleware such as
// services/lib/serve can label metrics with r.Pattern and resolve a request's
// route with (*http.ServeMux).Handler before serving it.
func New(b Backend, opts Options, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &server{backend: b, opts: opts.withDefaults(), log: log}
	mux := http.NewServeMux()
	s.routes(mux)
	return mux
}

type server struct {
	backend Backend
	opts    Options
	log     *slog.Logger
}
