package serve

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options describe one part's HTTP face.
type Options struct {
	// Public is the part's own API (for the webserver: the public API and page).
	// Nil serves only /healthz, /metrics and /admin/.
	Public http.Handler
	// Registry is the part's own metrics registry; New adds the Go and process
	// collectors and the RED metrics to it. Nil means a fresh one.
	Registry *prometheus.Registry
	// Ready reports readiness for /healthz; nil means always ready.
	Ready func(context.Context) error
	// Info adds fields to the /healthz JSON (for example breaker settings), so
	// `lab status` can show them. Keys "status" and "error" are reserved.
	Info func() map[string]any
	// AdminConfig adds GET /admin/config answering Info, for parts whose
	// configuration (breaker settings, dependency URLs) tools read back.
	AdminConfig bool
	// WriteTimeout overrides DefaultWriteTimeout.
	WriteTimeout time.Duration
	Log          *slog.Logger
}

// Server is a part's HTTP handler tree, ready to Run.
type Server struct {
	opts    Options
	log     *slog.Logger
	root    *http.ServeMux
	admin   *http.ServeMux
	faults  *Faults
	handler http.Handler
}

// ReadyTimeout bounds one readiness check.
const ReadyTimeout = 2 * time.Second

// New assembles the tree:
//
//	GET /healthz   readiness JSON
//	GET /metrics   Prometheus text format from opts.Registry
//	/admin/...     loopback clients only: faults, and whatever the part adds (HandleAdmin)
//	/              opts.Public, behind the injected faults
//
// and wraps it all in RED metrics labelled by route pattern.
func New(opts Options) *Server {
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	opts.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	s := &Server{opts: opts, log: opts.Log, root: http.NewServeMux(), admin: http.NewServeMux(), faults: NewFaults(opts.Log)}

	s.root.Handle("GET /healthz", s.handleHealth())
	s.root.Handle("GET /metrics", promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{
		Registry:          opts.Registry, // counts its own scrape errors
		ErrorLog:          slog.NewLogLogger(opts.Log.Handler(), slog.LevelWarn),
		EnableOpenMetrics: false,
	}))
	s.root.Handle("/admin/", loopbackOnly(s.admin))
	s.faults.register(s.admin)
	if opts.AdminConfig && opts.Info != nil {
		s.admin.HandleFunc("GET /admin/config", func(w http.ResponseWriter, r *http.Request) {
			WriteJSON(w, http.StatusOK, opts.Info())
		})
	}
	if opts.Public != nil {
		s.root.Handle("/", s.faults.middleware(opts.Public))
	}
	s.handler = newREDMetrics(opts.Registry).middleware(s.root)
	return s
}

// HandleAdmin lets a part add its own loopback-only admin endpoint, such as
// "POST /admin/slow-db". The pattern's path must start with /admin/.
func (s *Server) HandleAdmin(pattern string, h http.Handler) {
	path := pattern
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		path = strings.TrimSpace(pattern[i+1:])
	}
	if !strings.HasPrefix(path, "/admin/") {
		panic("serve: admin pattern " + pattern + " is outside /admin/")
	}
	s.admin.Handle(pattern, h)
}

// Faults are the in-service faults of this server (error rate, latency).
func (s *Server) Faults() *Faults { return s.faults }

// Registry is the part's metrics registry.
func (s *Server) Registry() *prometheus.Registry { return s.opts.Registry }

// ServeHTTP serves the whole tree (tests drive it directly or via httptest).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Run serves on addr until ctx is cancelled.
func (s *Server) Run(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is cancelled.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return Serve(ctx, ln, s, s.log, s.opts.WriteTimeout)
}

// loopbackOnly answers 403 to any client that is not on 127.0.0.0/8 or ::1:
// admin endpoints inject faults and must not be reachable from elsewhere.
func loopbackOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			writeError(w, http.StatusForbidden, "admin endpoints answer loopback clients only")
			return
		}
		h.ServeHTTP(w, r)
	})
}
