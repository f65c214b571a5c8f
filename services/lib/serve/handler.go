package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Options describe one part's HTTP face.
type Options struct {
	// Public is the part's own API (for the webserver: the public API and page).
	// Nil serves only a JSON 404 on the public listener.
	Public http.Handler
	// Registry is the part's own metrics registry; New adds the Go and process
	// collectors and the RED metrics to it. Nil means a fresh one.
	Registry *prometheus.Registry
	// Ready reports readiness for /healthz; nil means always ready.
	Ready func(context.Context) error
	// Info adds fields to the /healthz JSON (for example breaker settings), so
	// `lab status` can show them. Keys "status" and "error" are reserved; a
	// "warning" (text) shows in `lab status` while the part stays healthy.
	Info func() map[string]any
	// AdminConfig adds GET /admin/config answering Info, for parts whose
	// configuration (breaker settings, dependency URLs) tools read back.
	AdminConfig bool
	// WriteTimeout overrides DefaultWriteTimeout.
	WriteTimeout time.Duration
	Log          *slog.Logger
}

// Server is a part's two HTTP handler trees, ready to Run: the public one
// (the part's API and page) and the admin one (health, metrics, profiling,
// faults), each on its own listener.
type Server struct {
	opts      Options
	log       *slog.Logger
	adminMux  *http.ServeMux // /healthz, /metrics, /debug/pprof/, /admin/
	admin     *http.ServeMux // /admin/... routes (faults, part-specific)
	faults    *Faults
	bulkhead  *bulkhead
	red       *redMetrics
	handler   http.Handler // public tree
	adminTree http.Handler
}

// ReadyTimeout bounds one readiness check.
const ReadyTimeout = 2 * time.Second

// New assembles both trees. The admin listener serves
//
//	GET /healthz         readiness JSON
//	GET /metrics         Prometheus text format from opts.Registry
//	/debug/pprof/...     net/http/pprof
//	/admin/...           faults, and whatever the part adds (HandleAdmin)
//
// behind a Guard (loopback only, unless Listen.Allow says more); the public listener serves opts.Public behind the
// injected faults, and a JSON 404 for every path the part does not serve.
// Both are wrapped in RED metrics labelled by route pattern.
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
	s := &Server{opts: opts, log: opts.Log, adminMux: http.NewServeMux(), admin: http.NewServeMux(), faults: NewFaults(opts.Log)}

	s.adminMux.Handle("GET /healthz", s.handleHealth())
	s.adminMux.Handle("GET /metrics", MetricsHandler(opts.Registry, slog.NewLogLogger(opts.Log.Handler(), slog.LevelWarn)))
	registerPprof(s.adminMux)
	s.adminMux.Handle("/admin/", s.admin)
	s.adminMux.Handle("/", notFound("the admin listener serves /healthz, /metrics, /debug/pprof/ and /admin/"))
	s.faults.register(s.admin)
	if opts.AdminConfig && opts.Info != nil {
		s.admin.HandleFunc("GET /admin/config", func(w http.ResponseWriter, r *http.Request) {
			WriteJSON(w, http.StatusOK, opts.Info())
		})
	}
	s.admin.Handle("/admin/", notFound("unknown admin endpoint"))

	public := http.NewServeMux()
	s.bulkhead = newBulkhead(DefaultLimits(), opts.Registry)
	if opts.Public != nil {
		resolver, _ := opts.Public.(routeResolver)
		public.Handle("/", jsonNotFound(opts.Public, s.bulkhead.middleware(resolver, s.faults.middleware(opts.Public))))
	} else {
		public.Handle("/", notFound("this part has no public API; health, metrics and admin endpoints are on its admin listener"))
	}
	s.red = newREDMetrics(opts.Registry)
	s.handler = s.red.middleware(noMuxRedirects(public))
	s.guard(Guard{})
	return s
}

// HandleAdmin lets a part add its own admin endpoint, such as
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

// SetLimits sizes the public listener's bulkhead. Call it before serving
// (Run does, from Listen.Limits).
func (s *Server) SetLimits(l Limits) error {
	if err := l.Validate(); err != nil {
		return err
	}
	s.bulkhead.resize(l)
	return nil
}

// Limits are the public listener's limits in force.
func (s *Server) Limits() Limits { return s.bulkhead.limits }

// Faults are the in-service faults of this server (error rate, latency).
func (s *Server) Faults() *Faults { return s.faults }

// Registry is the part's metrics registry.
func (s *Server) Registry() *prometheus.Registry { return s.opts.Registry }

// ServeHTTP serves the public tree (tests drive it directly or via httptest).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Admin is the admin tree, behind the guard.
func (s *Server) Admin() http.Handler { return s.adminTree }

// Run serves the public tree on l.Public and the admin tree on l.Admin
// until ctx is cancelled. Either listener failing stops both.
func (s *Server) Run(ctx context.Context, l Listen) error {
	adminAddr, err := l.AdminAddr()
	if err != nil {
		return err
	}
	g, err := l.Guard()
	if err != nil {
		return err
	}
	if l.Limits != (Limits{}) {
		if err := s.SetLimits(l.Limits); err != nil {
			return err
		}
	}
	s.guard(g)
	if l.Procs > 0 {
		runtime.GOMAXPROCS(l.Procs)
	}
	var pub net.Listener
	if l.Public != "" {
		if pub, err = net.Listen("tcp", l.Public); err != nil {
			return fmt.Errorf("--listen %s: %w", l.Public, err)
		}
	}
	adm, err := net.Listen("tcp", adminAddr)
	if err != nil {
		if pub != nil {
			pub.Close()
		}
		return fmt.Errorf("--admin-listen %s: %w", adminAddr, err)
	}
	return s.Serve(ctx, pub, adm)
}

// Serve serves on listeners the caller opened (tests use 127.0.0.1:0); a
// nil public listener serves the admin tree only (the broker has no HTTP API).
func (s *Server) Serve(ctx context.Context, public, admin net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	n := 1
	if public != nil {
		n++
		go func() { errc <- Serve(ctx, public, s.handler, s.log, s.opts.WriteTimeout); cancel() }()
	}
	go func() {
		errc <- Serve(ctx, admin, s.adminTree, s.log.With("listener", "admin"), s.opts.WriteTimeout)
		cancel()
	}()
	var errs []error
	for range n {
		errs = append(errs, <-errc)
	}
	return errors.Join(errs...)
}

// guard puts the admin tree behind g.
func (s *Server) guard(g Guard) {
	if g.What == "" {
		g.What = "the admin listener"
	}
	s.adminTree = s.red.countingMiddleware(g.Wrap(noMuxRedirects(s.adminMux)))
}

// notFound answers every request 404 with a JSON error naming the path.
func notFound(hint string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %.100s (%s)", r.Method, r.URL.Path, hint))
	})
}

// jsonNotFound answers paths the public handler api has no route for with
// a JSON 404 rather than ServeMux's plain text, and passes the rest to next
// (api behind the faults). Handlers that are not a ServeMux get everything.
func jsonNotFound(api, next http.Handler) http.Handler {
	resolver, ok := api.(routeResolver)
	if !ok {
		return next
	}
	nf := notFound("the public listener serves the part's API; /healthz, /metrics and /admin/ are on its admin listener")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := resolver.Handler(r); pattern == "" {
			r.Pattern = "" // counted as route "unmatched", not "/"
			nf.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
