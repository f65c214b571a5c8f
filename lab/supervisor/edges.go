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
//
// An edge is open only while something listens behind it. A proxy in front
// of a dead process would accept a connection and close it at once, where
// the dead process's own port refuses it, and clients tell the two apart:
// franz-go retries a refused connection but fails the batches it had
// queued for one closed after connecting. So while a part the lab runs is
// down (killed, stopped, crashed, not yet listening) the edges in front of
// it are closed and refuse connections as its port would, and they open
// again once its new process accepts on that port.
type Edges struct {
	ports  layout.Ports
	edges  []parts.Edge
	runs   map[string]bool // parts whose processes this lab runs
	server *toxiproxy.ApiServer
	reg    *prometheus.Registry
	http   *http.Server
	log    *slog.Logger

	mu   sync.Mutex
	held map[string]bool // edges closed because nothing listens behind them
	gen  map[string]int  // per server part: bumped at every start and exit
}

// NewEdges prepares the proxies; Start opens them. runs are the parts whose
// processes the supervisor runs: their edges open when they listen.
func NewEdges(p layout.Ports, edges []parts.Edge, runs []string, log *slog.Logger) *Edges {
	reg := prometheus.NewRegistry()
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(reg), zerolog.Nop())
	e := &Edges{ports: p, edges: edges, runs: map[string]bool{}, server: server, reg: reg, log: log,
		held: map[string]bool{}, gen: map[string]int{}}
	for _, part := range runs {
		e.runs[part] = true
	}
	return e
}

// Collectors are extra collectors for the supervisor's /metrics (none today:
// Toxiproxy's own metrics stay on its API).
func (e *Edges) Collectors() []prometheus.Collector { return nil }

// Start adds every edge proxy and opens Toxiproxy's API. An edge in front
// of a part the lab runs stays closed until ServerStarted sees that part
// listen.
func (e *Edges) Start() error {
	for _, edge := range e.edges {
		p := toxiproxy.NewProxy(e.server, edge.Name, edge.Listen(e.ports), edge.Upstream(e.ports))
		closed := e.runs[edge.Server()]
		if closed {
			e.mu.Lock()
			e.held[edge.Name] = true
			e.mu.Unlock()
		}
		if err := e.server.Collection.Add(p, !closed); err != nil {
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

// HealAll removes every toxic and re-enables every proxy, except those in
// front of a part that is down: they open when it listens again.
func (e *Edges) HealAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.server.Collection.Proxies() {
		p.Toxics.ResetToxics(context.Background())
		if !p.Enabled && !e.held[p.Name] {
			_ = p.Start()
		}
	}
}

// listenBound bounds how long a started part's edges wait for it to listen:
// longer than any part takes to start (a JVM broker or registry), after
// which they open anyway, as they did before edges waited at all.
const listenBound = 3 * time.Minute

// ServerExited closes the edges in front of part, whose process is gone:
// they refuse connections, as its port does, until ServerStarted.
func (e *Edges) ServerExited(part string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.gen[part]++
	for _, edge := range e.in(part) {
		p, err := e.server.Collection.Get(edge.Name)
		if err != nil {
			continue
		}
		e.held[edge.Name] = true
		if p.Enabled {
			p.Stop()
			e.log.Info("edge closed: nothing listens behind it", "edge", edge.Name, "server", part)
		}
	}
}

// ServerStarted opens the edges in front of part once its new process
// accepts connections on their upstream addresses (or after listenBound).
// A start or exit of the part before that cancels the wait.
func (e *Edges) ServerStarted(part string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.gen[part]++
	gen := e.gen[part]
	for _, edge := range e.in(part) {
		if e.held[edge.Name] {
			go e.openWhenListening(part, gen, edge.Name, edge.Upstream(e.ports))
		}
	}
}

// in are the edges whose upstream part is part.
func (e *Edges) in(part string) []parts.Edge {
	var out []parts.Edge
	for _, edge := range e.edges {
		if edge.Server() == part {
			out = append(out, edge)
		}
	}
	return out
}

func (e *Edges) openWhenListening(part string, gen int, name, upstream string) {
	deadline := time.Now().Add(listenBound)
	for {
		if !e.current(part, gen) {
			return
		}
		c, err := net.DialTimeout("tcp", upstream, 250*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			e.log.Warn("edge opened although nothing listens behind it yet", "edge", name, "upstream", upstream, "waited", listenBound)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.gen[part] != gen || !e.held[name] {
		return
	}
	delete(e.held, name)
	if p, err := e.server.Collection.Get(name); err == nil && !p.Enabled {
		if err := p.Start(); err != nil {
			e.log.Error("edge did not open", "edge", name, "err", err)
		}
	}
}

func (e *Edges) current(part string, gen int) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.gen[part] == gen
}

// Open reports whether every edge in front of part is open (none is held
// closed for want of a listener).
func (e *Edges) Open(part string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, edge := range e.in(part) {
		if e.held[edge.Name] {
			return false
		}
	}
	return true
}

// Close stops the API and every proxy.
func (e *Edges) Close() {
	if e.http != nil {
		_ = e.http.Close()
	}
	_ = e.server.Collection.Clear()
}
