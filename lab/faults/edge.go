package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
)

// edgeToxic is an edge fault as Toxiproxy toxics on the edge's proxy: one
// toxic of Type per direction (the `direction` parameter), applied to the
// `toxicity` parameter's fraction of connections (all without one).
type edgeToxic struct {
	Type string
	// Attributes are the parameters the toxic takes as attributes of the
	// same name (durations in milliseconds, as Toxiproxy reads them).
	Attributes []string
	// Fixed are attributes whose value does not depend on parameters.
	Fixed map[string]any
	// BothWays: upstream and downstream, whatever the parameters say.
	BothWays bool
}

func (t edgeToxic) effectOn(inj *Injector, rec *record, _ time.Duration) effect {
	return &edgeEffect{proxies: inj.cfg.Proxies, edge: rec.Target, id: rec.ID, kind: rec.kind, toxic: t, params: rec.Params}
}

// edgeEffect adds Toxiproxy toxics to one edge's proxy. Toxics are named
// "lab-<fault id>-<direction>", so they are recognisable in toxiproxy-cli
// and never collide with toxics a user added by hand.
type edgeEffect struct {
	proxies *toxiproxy.ApiServer
	edge    string
	id      string
	kind    Kind
	toxic   edgeToxic
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
	attrs := maps.Clone(e.toxic.Fixed)
	if attrs == nil {
		attrs = map[string]any{}
	}
	for _, name := range e.toxic.Attributes {
		if p, _ := e.kind.Param(name); p.Type == ParamDuration {
			attrs[name] = e.params.Duration(name).Milliseconds()
		} else {
			attrs[name] = e.params.Int(name)
		}
	}
	toxicity := 1.0
	if _, ok := e.params["toxicity"]; ok {
		toxicity = e.params.Float("toxicity")
	}
	dirs := []string{e.params["direction"]}
	if e.toxic.BothWays || dirs[0] == "both" {
		dirs = []string{"upstream", "downstream"}
	}
	out := make([]toxic, 0, len(dirs))
	for _, d := range dirs {
		out = append(out, toxic{Name: "lab-" + e.id + "-" + d, Type: e.toxic.Type, Stream: d, Toxicity: toxicity, Attributes: attrs})
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
