package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
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
type Edges struct {
	ports  layout.Ports
	edges  []parts.Edge
	server *toxiproxy.ApiServer
	reg    *prometheus.Registry
	http   *http.Server
	log    *slog.Logger
}

// NewEdges prepares the proxies; Start opens them.
func NewEdges(p layout.Ports, edges []parts.Edge, log *slog.Logger) *Edges {
	reg := prometheus.NewRegistry()
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(reg), zerolog.Nop())
	return &Edges{ports: p, edges: edges, server: server, reg: reg, log: log}
}

// Collectors are extra collectors for the supervisor's /metrics (none today:
// Toxiproxy's own metrics stay on its API).
func (e *Edges) Collectors() []prometheus.Collector { return nil }

// Start opens every edge proxy and Toxiproxy's API.
func (e *Edges) Start() error {
	for _, edge := range e.edges {
		p := toxiproxy.NewProxy(e.server, edge.Name, edge.Listen(e.ports), edge.Upstream(e.ports))
		if err := e.server.Collection.Add(p, true); err != nil {
			e.Close()
			return fmt.Errorf("edge proxy %s on %s: %w", edge.Name, edge.Listen(e.ports), err)
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

// HealAll removes every toxic and re-enables every proxy.
func (e *Edges) HealAll() {
	for _, p := range e.server.Collection.Proxies() {
		p.Toxics.ResetToxics(context.Background())
		if !p.Enabled {
			_ = p.Start()
		}
	}
}

// Close stops the API and every proxy.
func (e *Edges) Close() {
	if e.http != nil {
		_ = e.http.Close()
	}
	_ = e.server.Collection.Clear()
}
