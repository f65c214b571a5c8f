package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/services/lib/serve"
)

// Edges runs one Toxiproxy proxy per network edge, and Toxiproxy's own HTTP
// API on loopback, so toxiproxy-cli and Toxiproxy clients work on the lab.
// An edge in front of a part the lab runs is open only while something
// accepts behind it (edgefollow.go).
type Edges struct {
	ports  layout.Ports
	edges  []parts.Edge
	server *toxiproxy.ApiServer
	reg    *prometheus.Registry
	http   *http.Server
	log    *slog.Logger

	mu     sync.Mutex
	refs   []edgeRef       // every edge in front of a part the lab runs, spawned ones included
	held   map[string]bool // edges closed because nothing accepts behind them
	gen    map[string]int  // per part the lab runs: its current watch (edgefollow.go)
	closed bool
}

// NewEdges prepares the proxies; Start opens them. runs are the parts whose
// processes the supervisor runs: the edges in front of them follow them.
func NewEdges(p layout.Ports, edges []parts.Edge, runs []string, log *slog.Logger) *Edges {
	reg := prometheus.NewRegistry()
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(reg), zerolog.Nop())
	e := &Edges{ports: p, edges: edges, server: server, reg: reg, log: log,
		held: map[string]bool{}, gen: map[string]int{}}
	for _, part := range runs {
		e.gen[part] = 0 // a part in gen is one whose edges follow it
	}
	return e
}

// Collectors are extra collectors for the supervisor's /metrics (none today:
// Toxiproxy's own metrics stay on its API).
func (e *Edges) Collectors() []prometheus.Collector { return nil }

// Start adds every edge proxy and opens Toxiproxy's API. An edge in front
// of a part the lab runs stays closed until that part listens.
func (e *Edges) Start() error {
	for _, edge := range e.edges {
		if err := e.Add(edge.Name, edge.Listen(e.ports), edge.Upstream(e.ports), edge.Server()); err != nil {
			e.Close()
			return err
		}
	}
	ln, err := net.Listen("tcp", e.ports.Toxiproxy())
	if err != nil {
		e.Close()
		return fmt.Errorf("toxiproxy API: port %s is in use: %w", e.ports.Toxiproxy(), err)
	}
	// Toxiproxy refuses browser user agents itself; the guard also refuses
	// foreign Host/Origin headers and non-JSON bodies, as every lab API does.
	e.http = &http.Server{Handler: serve.Guard{What: "the Toxiproxy API"}.Wrap(e.server.Routes()), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := e.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error("toxiproxy API stopped", "err", err)
		}
	}()
	return nil
}

// Server is the embedded Toxiproxy, for the fault injector.
func (e *Edges) Server() *toxiproxy.ApiServer { return e.server }

// List returns the edges this lab proxies.
func (e *Edges) List() []parts.Edge { return e.edges }

// HealAll removes every toxic and re-enables every proxy, except those in
// front of a part that is down: they open when it listens again.
func (e *Edges) HealAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.server.Collection.Proxies() {
		p.Toxics.ResetToxics(context.Background())
		if !e.held[p.Name] {
			_ = p.Start() // ErrProxyAlreadyStarted when it is open
		}
	}
}

// Close stops the API and every proxy.
func (e *Edges) Close() {
	e.mu.Lock()
	e.closed = true // ends every watch
	e.mu.Unlock()
	if e.http != nil {
		_ = e.http.Close()
	}
	_ = e.server.Collection.Clear()
}
