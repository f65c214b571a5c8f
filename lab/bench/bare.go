package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/lab/supervisor"
)

// HopSpec is one hop standing in for a part: on the part's public
// address, passing each request on to Next (an edge proxy's address).
type HopSpec struct {
	Part    string // the part it stands in for
	Variant string
	Listen  string
	Next    string // "" for the last hop
	Status  int
	// Procs is the hop's GOMAXPROCS: the part's own (the rpc parts run
	// with parts.SharedProcs(); 0: Go's default, as the stream parts).
	Procs int
}

// BareHops are the hops of variant's synchronous POST path in the running
// lab, chained through the lab's own edge proxies:
//
//	rpc:    webserver-rpc → proxy → ratings-rpc → proxy → movies-rpc
//	stream: webserver-stream → proxy → broker (what a POST waits for: the
//	        produce; the processor's work happens after the 202)
//
// The stream path needs the embedded single-node broker (its edge proxy).
func BareHops(ps []supervisor.PartStatus, info supervisor.LabInfo, variant string) ([]HopSpec, error) {
	addr := map[string]string{}
	for _, p := range ps {
		addr[p.Name] = p.Addr
	}
	edge := map[string]string{}
	for _, e := range info.Edges {
		edge[e.Name] = e.Listen
	}
	var chain []string
	status := 201
	switch variant {
	case "rpc":
		chain = []string{"webserver-rpc", "ratings-rpc", "movies-rpc"}
	case "stream":
		chain, status = []string{"webserver-stream", "broker"}, 202
	default:
		return nil, fmt.Errorf("variant %q: no bare hops known (rpc or stream)", variant)
	}
	var hops []HopSpec
	for i, part := range chain {
		h := HopSpec{Part: part, Variant: variant, Listen: addr[part], Status: status}
		if variant == "rpc" {
			h.Procs = parts.SharedProcs()
		}
		if h.Listen == "" {
			return nil, fmt.Errorf("bare hops of %s: no part %s in this lab (the stream hops need the embedded single-node broker)", variant, part)
		}
		if i+1 < len(chain) {
			e := edge[part+"->"+chain[i+1]]
			if e == "" {
				return nil, fmt.Errorf("bare hops of %s: no edge proxy %s->%s in this lab", variant, part, chain[i+1])
			}
			h.Next = "http://" + e
		}
		if i > 0 {
			h.Status = 200
		}
		hops = append(hops, h)
	}
	return hops, nil
}

// PartsToStop are the parts whose ports the bare hops of variants take,
// and the parts that would only fail without them (the broker's clients):
// services first, the broker last.
func PartsToStop(ps []supervisor.PartStatus, variants []string) []string {
	var out []string
	broker := false
	for _, p := range ps {
		switch {
		case p.Name == "broker":
			broker = slices.Contains(variants, "stream")
		case slices.Contains(variants, p.Variant):
			out = append(out, p.Name)
		}
	}
	if broker {
		out = append(out, "broker")
	}
	return out
}

// Hop is a running hop process.
type Hop struct {
	Spec   HopSpec
	PID    int
	kill   func() error
	exited chan error
}

// Stop kills the hop (it holds no state) and waits until it is gone, so
// the part can take its port back.
func (h *Hop) Stop() {
	h.kill()
	<-h.exited
}

// StartHop runs one hop as its own process (`lab bench hop`, exe is the
// lab binary) and waits until it accepts connections. The process dies
// with this one (Pdeathsig); its log goes to stderr.
func StartHop(ctx context.Context, exe string, h HopSpec, stderr io.Writer) (*Hop, error) {
	args := []string{"bench", "hop", "--listen", h.Listen, "--status", strconv.Itoa(h.Status)}
	if h.Next != "" {
		args = append(args, "--next", h.Next)
	}
	if h.Procs > 0 {
		args = append(args, "--procs", strconv.Itoa(h.Procs))
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("hop %s: %w", h.Part, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", h.Listen, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return &Hop{Spec: h, PID: cmd.Process.Pid, kill: cmd.Process.Kill, exited: exited}, nil
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("hop %s on %s exited: %v", h.Part, h.Listen, err)
		case <-ctx.Done():
			cmd.Process.Kill()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			return nil, fmt.Errorf("hop %s: not listening on %s after 10s", h.Part, h.Listen)
		}
	}
}

// WaitEdges waits (at most 10 s) until the edge each hop passes requests
// to accepts connections: the lab's edges stay closed while the part
// behind them is down, and open once something (here the next hop) listens
// on its port.
func WaitEdges(ctx context.Context, hops []*Hop) error {
	deadline := time.Now().Add(10 * time.Second)
	for _, h := range hops {
		if h.Spec.Next == "" {
			continue
		}
		addr := strings.TrimPrefix(h.Spec.Next, "http://")
		for {
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the edge %s after hop %s does not accept connections: %v", addr, h.Spec.Part, err)
			}
			if err := Sleep(ctx, 20*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}

// StopParts stops the named parts (SIGTERM, in order).
func StopParts(ctx context.Context, c *supervisor.Client, names []string) error {
	for _, n := range names {
		if _, err := c.Action(ctx, n, supervisor.ActionStop); err != nil {
			return fmt.Errorf("stop %s: %w", n, err)
		}
	}
	return nil
}

// StartParts starts the named parts again, the broker first, and waits
// (at most timeout) until each is healthy.
func StartParts(ctx context.Context, c *supervisor.Client, names []string, timeout time.Duration) error {
	order := slices.Clone(names)
	if i := slices.Index(order, "broker"); i > 0 {
		order = append([]string{"broker"}, slices.Delete(order, i, i+1)...)
	}
	deadline := time.Now().Add(timeout)
	for i, n := range order {
		if _, err := c.Action(ctx, n, supervisor.ActionStart); err != nil {
			return fmt.Errorf("start %s: %w", n, err)
		}
		if n == "broker" || i == len(order)-1 {
			if err := waitHealthy(ctx, c, order[:i+1], deadline); err != nil {
				return err
			}
		}
	}
	return nil
}

func waitHealthy(ctx context.Context, c *supervisor.Client, names []string, deadline time.Time) error {
	for {
		ps, err := c.Parts(ctx)
		if err != nil {
			return err
		}
		var waiting []string
		for _, p := range ps {
			if slices.Contains(names, p.Name) && p.Health != supervisor.HealthOK {
				waiting = append(waiting, p.Name+" "+string(p.Health))
			}
		}
		if len(waiting) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("parts not healthy again: %v (see 'lab status')", waiting)
		}
		if err := Sleep(ctx, 200*time.Millisecond); err != nil {
			return errors.Join(err, fmt.Errorf("parts not healthy again: %v", waiting))
		}
	}
}
