package chaos

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ratingslab/lab/services/lib/breaker"
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

// Suffix names the setting in run names, short enough that two settings
// of one experiment stay apart in a run id: "breakers-off-r3".
func (r Resilience) Suffix() string {
	var parts []string
	if r.Breakers != "" {
		parts = append(parts, "breakers-"+r.Breakers)
	}
	if r.Retries != nil {
		parts = append(parts, "r"+strconv.Itoa(*r.Retries))
	}
	return strings.Join(parts, "-")
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
