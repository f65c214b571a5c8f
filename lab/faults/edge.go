package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
)

// edgeEffect adds Toxiproxy toxics to one edge's proxy. Toxics are named
// "lab-<fault id>-<direction>", so they are recognisable in toxiproxy-cli
// and never collide with toxics a user added by hand.
type edgeEffect struct {
	proxies *toxiproxy.ApiServer
	edge    string
	id      string
	kind    string
	params  Params
	added   []string
}

// toxic is the JSON Toxiproxy reads a toxic from.
type toxic struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Stream     string         `json:"stream"`
	Toxicity   float64        `json:"toxicity"`
	Attributes map[string]any `json:"attributes"`
}

// toxics translates the fault into Toxiproxy toxics (durations in ms).
func (e *edgeEffect) toxics() []toxic {
	ms := func(name string) int64 { return e.params.Duration(name).Milliseconds() }
	typ, attrs := e.kind, map[string]any{}
	switch e.kind {
	case "latency":
		attrs["latency"], attrs["jitter"] = ms("latency"), ms("jitter")
	case "timeout", "reset_peer":
		attrs["timeout"] = ms("timeout")
	case "bandwidth":
		attrs["rate"] = e.params.Int("rate")
	case "slow_close":
		attrs["delay"] = ms("delay")
	case "limit_data":
		attrs["bytes"] = e.params.Int("bytes")
	case "partition":
		// Nothing gets through either way and nothing is closed: clients
		// see their requests hang, as in a real partition.
		typ, attrs["timeout"] = "timeout", 0
	}
	toxicity := 1.0
	if _, ok := e.params["toxicity"]; ok {
		toxicity = e.params.Float("toxicity")
	}
	dirs := []string{e.params["direction"]}
	if e.kind == "partition" || dirs[0] == "both" {
		dirs = []string{"upstream", "downstream"}
	}
	out := make([]toxic, 0, len(dirs))
	for _, d := range dirs {
		out = append(out, toxic{Name: "lab-" + e.id + "-" + d, Type: typ, Stream: d, Toxicity: toxicity, Attributes: attrs})
	}
	return out
}

func (e *edgeEffect) apply(ctx context.Context) error {
	p, err := e.proxies.Collection.Get(e.edge)
	if err != nil {
		return fmt.Errorf("edge proxy %s: %w", e.edge, err)
	}
	for _, t := range e.toxics() {
		b, _ := json.Marshal(t)
		if _, err := p.Toxics.AddToxicJson(bytes.NewReader(b)); err != nil {
			_ = e.heal(ctx, false)
			return fmt.Errorf("add toxic %s to %s: %w", t.Name, e.edge, err)
		}
		e.added = append(e.added, t.Name)
	}
	return nil
}

// heal removes the toxics; one a user already removed by hand is fine.
func (e *edgeEffect) heal(ctx context.Context, _ bool) error {
	p, err := e.proxies.Collection.Get(e.edge)
	if err != nil {
		return fmt.Errorf("edge proxy %s: %w", e.edge, err)
	}
	var errs []error
	for _, name := range e.added {
		if err := p.Toxics.RemoveToxic(ctx, name); err != nil && !errors.Is(err, toxiproxy.ErrToxicNotFound) {
			errs = append(errs, fmt.Errorf("remove toxic %s from %s: %w", name, e.edge, err))
		}
	}
	e.added = nil
	return errors.Join(errs...)
}
