package chaos

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ratingslab/lab/services/lib/breaker"
	"github.com/ratingslab/lab/services/lib/variantname"
)

// Resilience is one setting of the RPC variant's callers for a run: their
// breakers and retries, switched at runtime through the lab's control API
// (`lab breakers`). An experiment with two runs them back to back on the
// same lab and renders the comparison (no lab down/up in between).
type Resilience struct {
	Breakers string `json:"breakers,omitempty"` // "on" | "off"; "" leaves the lab's
	Retries  *int   `json:"retries,omitempty"`  // 0..breaker.MaxRetries; nil leaves the lab's
}

// MaxResilienceRuns bounds `resilience`: one setting, or two to compare.
const MaxResilienceRuns = 2

// Request is the control API's body for r.
func (r Resilience) Request() breaker.Resilience {
	var req breaker.Resilience
	if r.Breakers != "" {
		b := r.Breakers
		req.Breakers = &b
	}
	if r.Retries != nil {
		n := *r.Retries
		req.Retries = &n
	}
	return req
}

// Label names the setting for people: "breakers off, retries 3".
func (r Resilience) Label() string {
	var parts []string
	if r.Breakers != "" {
		parts = append(parts, "breakers "+r.Breakers)
	}
	if r.Retries != nil {
		parts = append(parts, "retries "+strconv.Itoa(*r.Retries))
	}
	return strings.Join(parts, ", ")
}

// ResilienceRun is one run of an experiment's `resilience` list.
type ResilienceRun struct {
	Resilience
	// Suffix names the run after what varies (see ResilienceRuns).
	Suffix string
}

// ResilienceRuns are the runs the plan's `resilience` makes, each named by
// what actually varies: with two settings, the fields whose values differ
// between them ("breakers-off" / "breakers-on", "retries-0" / "retries-3");
// a single setting, its own fields (what the run sets against the lab's).
// The settings are the RPC variant's callers': when rpc is not among the
// plan's variants they change nothing, so there are no such runs (the
// experiment runs once, plainly, named after itself).
func (p *Plan) ResilienceRuns() []ResilienceRun {
	rs := p.Exp.Resilience
	if len(rs) == 0 || !slices.Contains(p.Variants, variantname.RPC) {
		return nil
	}
	varies := func(field func(Resilience) string) bool {
		if len(rs) == 1 {
			return field(rs[0]) != ""
		}
		return slices.ContainsFunc(rs[1:], func(r Resilience) bool { return field(r) != field(rs[0]) })
	}
	breakers := func(r Resilience) string { return r.Breakers }
	retries := func(r Resilience) string {
		if r.Retries == nil {
			return ""
		}
		return strconv.Itoa(*r.Retries)
	}
	out := make([]ResilienceRun, len(rs))
	for i, r := range rs {
		var parts []string
		for _, f := range []struct {
			name  string
			value func(Resilience) string
		}{{"breakers", breakers}, {"retries", retries}} {
			if varies(f.value) {
				parts = append(parts, f.name+"-"+cmp.Or(f.value(r), "as-lab"))
			}
		}
		out[i] = ResilienceRun{Resilience: r, Suffix: strings.Join(parts, "-")}
	}
	return out
}

// describeResilience is the plan's `resilience` for Describe; "" without one.
func (p *Plan) describeResilience() string {
	if len(p.Exp.Resilience) == 0 {
		return ""
	}
	runs := p.ResilienceRuns()
	if len(runs) == 0 {
		return "resilience: not applied (it sets the RPC variant's callers, and rpc does not run): one run"
	}
	var labels, names []string
	for _, r := range runs {
		labels = append(labels, "RPC "+r.Label())
		names = append(names, "-"+r.Suffix)
	}
	if len(runs) == 1 {
		return fmt.Sprintf("resilience: %s, set at runtime for the run (run name ends %s)", labels[0], names[0])
	}
	return fmt.Sprintf("resilience: %d runs back to back on the same lab, %s (run names end %s)", len(runs), strings.Join(labels, ", then "), strings.Join(names, ", "))
}

// resilience decodes the `resilience` list.
func (d *decoder) resilience(n *yaml.Node) error {
	items, err := d.list(n, "resilience")
	if err != nil {
		return err
	}
	if len(items) == 0 || len(items) > MaxResilienceRuns {
		return d.errAt(n, "resilience", "want 1 setting, or %d to compare back to back; got %d", MaxResilienceRuns, len(items))
	}
	for i, it := range items {
		p := fmt.Sprintf("resilience[%d]", i)
		m, err := d.mapping(it, p, "breakers", "retries")
		if err != nil {
			return err
		}
		var r Resilience
		if x := m["breakers"]; x != nil {
			if r.Breakers, err = d.onOff(x, p+".breakers"); err != nil {
				return err
			}
		}
		if x := m["retries"]; x != nil {
			v, err := d.number(x, p+".retries")
			if err != nil {
				return err
			}
			if v != math.Trunc(v) || v < 0 || v > breaker.MaxRetries {
				return d.errAt(x, p+".retries", "want an integer from 0 to %d, got %v", breaker.MaxRetries, v)
			}
			n := int(v)
			r.Retries = &n
		}
		if r.Breakers == "" && r.Retries == nil {
			return d.errAt(it, p, "set breakers (on|off), retries (0..%d) or both", breaker.MaxRetries)
		}
		d.exp.Resilience = append(d.exp.Resilience, r)
	}
	return nil
}
