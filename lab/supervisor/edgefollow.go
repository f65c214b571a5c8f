package supervisor

import (
	"fmt"
	"net"
	"slices"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
)

// An edge follows the part behind it. A proxy in front of a dead process
// would accept a connection and close it at once, where the dead process's
// own port refuses it, and clients tell the two apart: a refused dial is
// certain to have sent nothing, and franz-go retries it, but fails the
// batches it had queued for a connection closed after connecting. So while
// a part the lab runs is down (killed, stopped, crashed, not yet listening)
// the edges in front of it are closed and refuse connections as its port
// would; they open again once its new process accepts on the upstream
// address.

// listenBound bounds how long a started part's edges wait for it to listen:
// longer than any part takes to start (a JVM broker or registry), after
// which they open anyway, as they did before edges waited at all.
const listenBound = 3 * time.Minute

// edgeRef is an edge in front of a part the lab runs.
type edgeRef struct{ name, upstream, server string }

// upstream is what the edges know of a part they front.
type upstream struct {
	gen       int  // bumped at every start and exit: a wait of an older one stops
	starting  bool // started, not yet seen listening
	listening bool
}

// Add adds an edge proxy from listen to upstream. server is the part the
// lab runs behind it ("" for none: the edge is always open); the edge is
// open only while that part listens.
func (e *Edges) Add(name, listen, upstreamAddr, server string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	up := e.servers[server]
	open := up == nil || up.listening
	p := toxiproxy.NewProxy(e.server, name, listen, upstreamAddr)
	if err := e.server.Collection.Add(p, open); err != nil {
		return fmt.Errorf("edge proxy %s on %s: %w", name, listen, err)
	}
	if up == nil {
		return nil
	}
	ref := edgeRef{name: name, upstream: upstreamAddr, server: server}
	e.refs = append(e.refs, ref)
	if !open {
		e.held[name] = true
		if up.starting {
			go e.openWhenListening(ref, up.gen)
		}
	}
	return nil
}

// Remove closes and forgets an edge proxy.
func (e *Edges) Remove(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.refs = slices.DeleteFunc(e.refs, func(r edgeRef) bool { return r.name == name })
	delete(e.held, name)
	_ = e.server.Collection.Remove(name)
}

// ServerExited closes the edges in front of part, whose process is gone:
// they refuse connections, as its port does, until ServerStarted.
func (e *Edges) ServerExited(part string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.advance(part, false) == nil {
		return
	}
	for _, ref := range e.in(part) {
		e.held[ref.name] = true
		if p, err := e.server.Collection.Get(ref.name); err == nil && p.Enabled {
			p.Stop()
			e.log.Info("edge closed: nothing listens behind it", "edge", ref.name, "server", part)
		}
	}
}

// ServerStarted opens the edges in front of part once its new process
// accepts connections on their upstream addresses (or after listenBound).
// A start or exit of the part before that ends the wait.
func (e *Edges) ServerStarted(part string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	up := e.advance(part, true)
	if up == nil {
		return
	}
	for _, ref := range e.in(part) {
		if e.held[ref.name] {
			go e.openWhenListening(ref, up.gen)
		}
	}
}

// advance begins a new generation of part, a start or an exit, and returns
// it (nil for a part the lab does not run); e.mu is held.
func (e *Edges) advance(part string, starting bool) *upstream {
	up := e.servers[part]
	if up != nil {
		up.gen++
		up.starting, up.listening = starting, false
	}
	return up
}

// Open reports whether every edge in front of part is open (none is held
// closed for want of a listener).
func (e *Edges) Open(part string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ref := range e.in(part) {
		if e.held[ref.name] {
			return false
		}
	}
	return true
}

// in are the edges in front of part; e.mu is held.
func (e *Edges) in(part string) []edgeRef {
	var out []edgeRef
	for _, ref := range e.refs {
		if ref.server == part {
			out = append(out, ref)
		}
	}
	return out
}

func (e *Edges) openWhenListening(ref edgeRef, gen int) {
	deadline := time.Now().Add(listenBound)
	for e.current(ref.server, gen) {
		c, err := net.DialTimeout("tcp", ref.upstream, 250*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			e.log.Warn("edge opened although nothing listens behind it yet", "edge", ref.name, "upstream", ref.upstream, "waited", listenBound)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	up := e.servers[ref.server]
	if up.gen != gen || !e.held[ref.name] {
		return
	}
	up.starting, up.listening = false, true
	delete(e.held, ref.name)
	if p, err := e.server.Collection.Get(ref.name); err == nil && !p.Enabled {
		if err := p.Start(); err != nil {
			e.log.Error("edge did not open", "edge", ref.name, "err", err)
		}
	}
}

func (e *Edges) current(part string, gen int) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.servers[part].gen == gen
}
