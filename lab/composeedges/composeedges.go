// Package composeedges keeps the proxies of a standalone Toxiproxy (the
// compose stack's) open only while something accepts behind them, as the
// supervisor keeps the native lab's edges (lab/supervisor/edgefollow.go).
//
// A proxy in front of a stopped container accepts each connection and
// closes it at once, where the container's own port would refuse it (or
// its name would not resolve), and clients tell the two apart: a refused
// dial is certain to have sent nothing, a connection closed after the
// request was written is not. Docker tells no one when a container stops,
// so the follower asks: every step it reads the proxies, dials each
// upstream once, closes the proxies whose upstream does not accept and
// opens again those it closed whose upstream does. A proxy disabled by
// anyone else (a partition by hand) is theirs: it is never opened here.
package composeedges

import (
	"context"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
)

// Every is how often a Follower run by Run steps: the longest a proxy
// stays open in front of a stopped container, or closed in front of one
// that listens again.
const Every = 250 * time.Millisecond

// dialTimeout bounds each upstream dial; a stopped container's address may
// swallow the SYN rather than refuse it.
const dialTimeout = 250 * time.Millisecond

// Follower follows the proxies of the Toxiproxy API at one URL.
type Follower struct {
	api *toxiproxy.Client
	log *slog.Logger

	mu   sync.Mutex
	held map[string]bool // proxies this follower closed
}

// New follows the Toxiproxy whose API is at url (http://host:8474).
func New(url string, log *slog.Logger) *Follower {
	return &Follower{api: toxiproxy.NewClient(url), log: log, held: map[string]bool{}}
}

// Held reports whether proxy name is closed because nothing accepts behind
// it: a closed edge, not a fault.
func (f *Follower) Held(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held[name]
}

// Run steps every Every until ctx ends.
func (f *Follower) Run(ctx context.Context) {
	tick := time.NewTicker(Every)
	defer tick.Stop()
	failing := false // log an unanswering API once, not every step
	for {
		err := f.Step(ctx)
		if err != nil && !failing {
			f.log.Warn("cannot follow the edges: Toxiproxy's API did not answer", "error", err.Error())
		}
		failing = err != nil
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Step reads every proxy once, dials each upstream once, and closes or
// opens proxies as their upstreams call for. Steps must not overlap (Run
// takes them one after the other).
func (f *Follower) Step(ctx context.Context) error {
	proxies, err := f.api.Proxies()
	if err != nil {
		return err
	}
	var upstreams []string
	for _, p := range proxies {
		if !slices.Contains(upstreams, p.Upstream) {
			upstreams = append(upstreams, p.Upstream)
		}
	}
	// At once: a stopped container's address may swallow the SYN, and
	// each such dial takes its whole timeout.
	accepting := make([]bool, len(upstreams))
	var wg sync.WaitGroup
	for i, addr := range upstreams {
		wg.Go(func() { accepting[i] = accepts(ctx, addr) })
	}
	wg.Wait()
	listening := map[string]bool{}
	for i, addr := range upstreams {
		listening[addr] = accepting[i]
	}
	for name, p := range proxies {
		up := listening[p.Upstream]
		switch {
		case !up && p.Enabled:
			// Held before it closes, so the watcher never counts the closed
			// proxy as a partition; not held across the API call.
			f.setHeld(name, true)
			if err := p.Disable(); err != nil {
				f.setHeld(name, false)
				f.log.Warn("edge did not close", "edge", name, "error", err.Error())
				continue
			}
			f.log.Info("edge closed: nothing listens behind it", "edge", name, "upstream", p.Upstream)
		case up && f.Held(name):
			if !p.Enabled {
				if err := p.Enable(); err != nil {
					f.log.Warn("edge did not open", "edge", name, "error", err.Error())
					continue
				}
			}
			f.setHeld(name, false)
		}
	}
	f.mu.Lock()
	maps.DeleteFunc(f.held, func(name string, _ bool) bool {
		_, exists := proxies[name]
		return !exists // removed from Toxiproxy
	})
	f.mu.Unlock()
	return nil
}

func (f *Follower) setHeld(name string, held bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if held {
		f.held[name] = true
	} else {
		delete(f.held, name)
	}
}

func accepts(ctx context.Context, addr string) bool {
	d := net.Dialer{Timeout: dialTimeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
