package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/Shopify/toxiproxy/v2/toxics"

	"github.com/ratingslab/lab/lab/supervisor"
)

// ExternalFault is a fault in force that this injector did not inject: a
// toxic added or a proxy disabled through Toxiproxy's own API
// (toxiproxy-cli), or an in-service fault set on a part's admin endpoint by
// hand. The lab's records alone would hide them; `lab status` and `lab chaos
// status` list them from what the proxies and the parts report.
type ExternalFault struct {
	Kind   string `json:"kind"`   // the toxic type, "proxy disabled", or the service fault
	Target string `json:"target"` // edge or part instance
	Detail string `json:"detail"`
	Via    string `json:"via"` // "toxiproxy API" or "admin endpoint"
}

func (e ExternalFault) String() string {
	return fmt.Sprintf("%s on %s: %s (set through the %s, not by the lab)", e.Kind, e.Target, e.Detail, e.Via)
}

// External reads every edge proxy's toxics and every service's fault state
// and returns what the injector's active records do not account for.
func (inj *Injector) External(ctx context.Context) []ExternalFault {
	inj.mu.Lock()
	ours := map[string]bool{}       // toxic names of active edge faults
	oursSvc := map[[2]string]bool{} // (instance, kind) of active service faults
	oursKafka := map[string]bool{}  // ids of active protocol faults
	for _, r := range inj.running {
		switch e := r.effect.(type) {
		case *edgeEffect:
			for _, t := range e.toxics() {
				ours[e.edge+"/"+t.Name] = true
			}
		case *serviceEffect:
			oursSvc[[2]string{e.instance, e.kind.Name}] = true
		case *kafkaEffect:
			oursKafka[e.id] = true
		}
	}
	inj.mu.Unlock()

	var out []ExternalFault
	if inj.cfg.Proxies != nil {
		for name, p := range inj.cfg.Proxies.Collection.Proxies() {
			if !supervisor.ProxyEnabled(p) && (inj.cfg.Held == nil || !inj.cfg.Held(name)) {
				out = append(out, ExternalFault{Kind: "proxy disabled", Target: name, Detail: "the edge proxy is disabled: nothing gets through", Via: "toxiproxy API"})
			}
			for _, t := range p.Toxics.GetToxicArray() {
				w, ok := t.(*toxics.ToxicWrapper)
				if !ok || ours[name+"/"+w.Name] {
					continue
				}
				attrs, _ := json.Marshal(w.Toxic)
				out = append(out, ExternalFault{Kind: w.Type, Target: name, Via: "toxiproxy API",
					Detail: fmt.Sprintf("toxic %q, %s, toxicity %g, %s", w.Name, w.Stream, w.Toxicity, attrs)})
			}
		}
	}

	var mu sync.Mutex
	var wg sync.WaitGroup
	for instance, addr := range inj.cfg.Targets.Services {
		wg.Go(func() {
			for _, f := range inj.serviceFaultsInForce(ctx, instance, addr) {
				if oursSvc[[2]string{instance, f.Kind}] {
					continue
				}
				mu.Lock()
				out = append(out, f)
				mu.Unlock()
			}
		})
	}
	for broker, addr := range inj.cfg.Targets.Kafka {
		wg.Go(func() {
			fs := inj.kafkaFaultsInForce(ctx, broker, addr, oursKafka)
			mu.Lock()
			out = append(out, fs...)
			mu.Unlock()
		})
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Target != out[j].Target {
			return out[i].Target < out[j].Target
		}
		return out[i].Kind < out[j].Kind
	})
	return out
}

// serviceFaultsInForce reads one part's admin fault endpoints (those it has;
// a part that does not answer has none to report).
func (inj *Injector) serviceFaultsInForce(ctx context.Context, instance, addr string) []ExternalFault {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	get := func(path string, v any) bool {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
		resp, err := inj.http.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(v) == nil
	}
	var out []ExternalFault
	read := map[string]map[string]any{} // admin path → what GET answered
	for _, k := range kinds {
		a, ok := k.act.(adminEndpoint)
		if !ok || !k.AppliesTo(instance) || a.Shows == "" {
			continue
		}
		state, ok := read[a.Path]
		if !ok {
			if !get(a.Path, &state) {
				state = nil
			}
			read[a.Path] = state
		}
		if v, ok := state[a.Field]; ok && !zeroJSON(v) {
			out = append(out, ExternalFault{Kind: k.Name, Target: instance, Detail: fmt.Sprintf(a.Shows, v), Via: "admin endpoint"})
		}
	}
	return out
}

// zeroJSON reports whether a decoded JSON value means "no fault": 0, "",
// "0s", null.
func zeroJSON(v any) bool {
	switch v := v.(type) {
	case float64:
		return v <= 0
	case string:
		return v == "" || v == "0s"
	}
	return v == nil
}
