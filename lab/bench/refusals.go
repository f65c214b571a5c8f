package bench

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/ratingslab/lab/lab/sampler"
	"github.com/ratingslab/lab/services/lib/metricname"
)

// A step's failures as the parts counted them: what a variant's own parts
// turned away or saw fail while the step ran. The load generator only
// sees "503"; these say which part answered it and why — a bulkhead full,
// a pool to a dependency exhausted, a breaker open — so a step that was not
// held names its bottleneck.

// refusalCounts are one process's counters of turned-away and failed work,
// by description ("bulkhead queue_full", "→ ratings-rpc failure").
type refusalCounts map[string]float64

// readRefusals scrapes every proc with a metrics URL; a proc that cannot be
// read is left out (it then shows no refusals for the step, never stale ones).
func readRefusals(ctx context.Context, procs []Proc) map[string]refusalCounts {
	client := &http.Client{Timeout: 2 * time.Second}
	out := map[string]refusalCounts{}
	for _, p := range procs {
		if p.Metrics == "" {
			continue
		}
		fams, err := sampler.ScrapeURL(ctx, client, p.Metrics)
		if err != nil {
			continue
		}
		out[p.Name] = refusalsOf(fams)
	}
	return out
}

// refusalsOf picks the counters of work refused or failed inside a part:
// its public listener's bulkhead (answered 503 without running the
// handler) and its calls to dependencies that did not succeed (failed,
// rejected by an open breaker, or a 503 passed on from further down).
func refusalsOf(fams sampler.Families) refusalCounts {
	rc := refusalCounts{}
	if f := fams[metricname.HTTPRejectedRequestsTotal]; f != nil {
		for _, m := range f.GetMetric() {
			rc["bulkhead "+label(m, "reason")] += m.GetCounter().GetValue()
		}
	}
	if f := fams[metricname.DependencyCallsTotal]; f != nil {
		for _, m := range f.GetMetric() {
			if res := label(m, "result"); res != "success" {
				rc["→ "+label(m, "dependency")+" "+res] += m.GetCounter().GetValue()
			}
		}
	}
	return rc
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// refusedDuring is what each of variant's procs counted between the two
// readings, keyed "part: what"; counts that did not grow are left out. A
// part restarted in between (its counters back at zero) shows nothing.
func refusedDuring(before, after map[string]refusalCounts, procs []Proc, variant string) map[string]uint64 {
	out := map[string]uint64{}
	for _, p := range procs {
		if p.Variant != variant {
			continue
		}
		b, a := before[p.Name], after[p.Name]
		for what, n := range a {
			if d := n - b[what]; d > 0 && b != nil {
				out[p.Name+": "+what] = uint64(d)
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// CountsLine renders a step's failures or refusals, largest first:
// "webserver-rpc: bulkhead queue_full 4621, webserver-rpc: → ratings-rpc
// failure 12".
func CountsLine(refused map[string]uint64) string {
	keys := make([]string, 0, len(refused))
	for k := range refused {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if refused[keys[i]] != refused[keys[j]] {
			return refused[keys[i]] > refused[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, refused[k])
	}
	return strings.Join(parts, ", ")
}
