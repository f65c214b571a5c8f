package supervisor

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
)

// An edge is open only while something accepts connections behind it. A
// proxy in front of a dead process would accept a connection and close it
// at once, where the dead process's own port refuses it, and clients tell
// the two apart: a refused dial is certain to have sent nothing, and
// franz-go retries it, but fails the batches it had queued for a connection
// closed after connecting. So when a part the lab runs exits (killed,
// stopped, crashed) the edges in front of it close and refuse connections,
// as its port does, and each opens again once its upstream address accepts
// a connection: the part's new process, or whatever else took the port
// (`lab bench post`'s bare hops stand in for stopped parts).

// Watching a closed edge's upstream: a dial every watchMin at first (a
// part just started listens within a few hundred milliseconds), slowing to
// watchMax while nothing listens. A watch ends when its edges are open, at
// the part's next start or exit, or when the edges close.
const (
	watchMin  = 10 * time.Millisecond
	watchMax  = 250 * time.Millisecond
	watchDial = 250 * time.Millisecond
)

// edgeRef is an edge in front of a part the lab runs.
type edgeRef struct{ name, upstream, server string }

// Add adds an edge proxy from listen to upstream. server is the part the
// lab runs behind it ("" for none: the edge is always open); the edge is
// open only while something accepts at upstream, and starts closed unless
// it is known to.
func (e *Edges) Add(name, listen, upstreamAddr, server string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, follows := e.gen[server]
	// Open at once when another edge in front of the same part already is:
	// something accepts there.
	open := !follows || len(e.heldIn(server)) < len(e.in(server))
	p := toxiproxy.NewProxy(e.server, name, listen, upstreamAddr)
	if err := e.server.Collection.Add(p, open); err != nil {
		return fmt.Errorf("edge proxy %s on %s: %w", name, listen, err)
	}
	if !follows {
		return nil
	}
	e.refs = append(e.refs, edgeRef{name: name, upstream: upstreamAddr, server: server})
	if !open {
		e.held[name] = true
		e.watchLocked(server)
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
// they refuse connections, as its port does, until something accepts there
// again. An edge someone disabled through Toxiproxy's API is left to them:
// the lab opens only what it closed.
func (e *Edges) ServerExited(part string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, follows := e.gen[part]; !follows {
		return
	}
	for _, ref := range e.in(part) {
		p, err := e.server.Collection.Get(ref.name)
		if err != nil || !ProxyEnabled(p) {
			// Closed already: by the lab (held), or by hand through
			// Toxiproxy's API, and then it is the user's to open.
			continue
		}
		p.Stop()
		e.held[ref.name] = true
		e.log.Info("edge closed: nothing listens behind it", "edge", ref.name, "server", part)
	}
	e.watchLocked(part)
}

// ServerStarted watches the closed edges in front of part again from the
// fastest pace: its new process is about to listen.
func (e *Edges) ServerStarted(part string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, follows := e.gen[part]; follows {
		e.watchLocked(part)
	}
}

// Held reports whether edge is closed because nothing accepts behind it:
// the lab's doing, not a fault.
func (e *Edges) Held(edge string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.held[edge]
}

// Open reports whether every edge in front of part is open.
func (e *Edges) Open(part string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.heldIn(part)) == 0
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

// heldIn are the closed edges in front of part; e.mu is held.
func (e *Edges) heldIn(part string) []edgeRef {
	return slices.DeleteFunc(e.in(part), func(r edgeRef) bool { return !e.held[r.name] })
}

// watchLocked starts a new watch of part's closed edges, ending the one
// before; e.mu is held.
func (e *Edges) watchLocked(part string) {
	e.gen[part]++
	go e.watch(part, e.gen[part])
}

// watch opens each closed edge in front of part once its upstream accepts.
func (e *Edges) watch(part string, gen int) {
	pause := watchMin
	for {
		e.mu.Lock()
		if e.gen[part] != gen || e.closed {
			e.mu.Unlock()
			return
		}
		held := e.heldIn(part)
		e.mu.Unlock()
		if len(held) == 0 {
			return
		}
		for _, ref := range held {
			c, err := net.DialTimeout("tcp", ref.upstream, watchDial)
			if err != nil {
				continue
			}
			c.Close()
			e.open(ref, gen)
		}
		time.Sleep(pause)
		pause = min(2*pause, watchMax)
	}
}

// open opens a closed edge whose upstream accepted, unless the part
// exited or started again meanwhile (a newer watch decides).
func (e *Edges) open(ref edgeRef, gen int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.gen[ref.server] != gen || !e.held[ref.name] {
		return
	}
	delete(e.held, ref.name)
	if p, err := e.server.Collection.Get(ref.name); err == nil {
		if err := p.Start(); err != nil && !errors.Is(err, toxiproxy.ErrProxyAlreadyStarted) {
			e.log.Error("edge did not open", "edge", ref.name, "err", err)
		}
	}
}

// ProxyEnabled reads a proxy's state under its lock: Toxiproxy's API
// changes it from its own goroutines.
func ProxyEnabled(p *toxiproxy.Proxy) bool {
	p.Lock()
	defer p.Unlock()
	return p.Enabled
}
