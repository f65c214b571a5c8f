package bench

import (
	"context"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ratingslab/lab/lab/sampler"
	"github.com/ratingslab/lab/services/lib/metricname"
)

// A step's failures as the parts counted them: what a variant's own parts
// turned away or saw fail while the step ran, and how long their calls to
// each other took. The load generator only sees "503"; these say which
// part answered it and why — a bulkhead full, a breaker open, calls slowed
// by the wait for a pooled connection — so a step that was not held names
// its bottleneck.

// partReading is one process's counters at one moment: work it turned
// away or saw fail, by description ("bulkhead queue_full", "→ ratings-rpc
// failure"), and its calls to each dependency.
type partReading struct {
	refused map[string]float64
	calls   map[string]callTotals // by dependency
}

// callTotals are a dependency's call attempts that reached it, their
// summed duration (the wait for a pooled connection included) and the
// size of the pool to it.
type callTotals struct{ count, seconds, pool float64 }

// readParts scrapes every variant's proc with a metrics URL; a proc that
// cannot be read is left out (it then shows nothing for the step, never
// stale counts).
func readParts(ctx context.Context, procs []Proc) map[string]partReading {
	client := &http.Client{Timeout: 2 * time.Second}
	out := map[string]partReading{}
	for _, p := range procs {
		if p.Metrics == "" || p.Variant == "" {
			continue
		}
		fams, err := sampler.ScrapeURL(ctx, client, p.Metrics)
		if err != nil {
			continue
		}
		out[p.Name] = readingOf(fams)
	}
	return out
}

// readingOf picks the counters of work refused or failed inside a part —
// its public listener's bulkhead (answered 503 without running the
// handler), its calls to dependencies that did not succeed (failed,
// rejected by an open breaker, or a 503 passed on from further down) and
// its Kafka writes that failed after their retries — and its calls per
// dependency.
func readingOf(fams sampler.Families) partReading {
	r := partReading{refused: map[string]float64{}, calls: map[string]callTotals{}}
	if f := fams[metricname.HTTPRejectedRequestsTotal]; f != nil {
		for _, m := range f.GetMetric() {
			r.refused["bulkhead "+sampler.Label(m, "reason")] += m.GetCounter().GetValue()
		}
	}
	if f := fams[metricname.DependencyCallsTotal]; f != nil {
		for _, m := range f.GetMetric() {
			if res := sampler.Label(m, "result"); res != "success" {
				r.refused["→ "+sampler.Label(m, "dependency")+" "+res] += m.GetCounter().GetValue()
			}
		}
	}
	if f := fams[metricname.KafkaProduceErrorsTotal]; f != nil {
		for _, m := range f.GetMetric() {
			r.refused["produce to "+sampler.Label(m, "topic")+" failed "+sampler.Label(m, "error")] += m.GetCounter().GetValue()
		}
	}
	if f := fams[metricname.DependencyCallDurationSeconds]; f != nil {
		for _, m := range f.GetMetric() {
			dep := sampler.Label(m, "dependency")
			c := r.calls[dep]
			c.count += float64(m.GetHistogram().GetSampleCount())
			c.seconds += m.GetHistogram().GetSampleSum()
			r.calls[dep] = c
		}
	}
	if f := fams[metricname.DependencyPoolConnections]; f != nil {
		for _, m := range f.GetMetric() {
			dep := sampler.Label(m, "dependency")
			c := r.calls[dep]
			c.pool = m.GetGauge().GetValue()
			r.calls[dep] = c
		}
	}
	return r
}

// eachPartReadTwice calls fn with both readings of each of variant's procs
// that was read before and after the step; a part missing from either
// reading shows nothing for the step.
func eachPartReadTwice(before, after map[string]partReading, procs []Proc, variant string, fn func(part string, b, a partReading)) {
	for _, p := range procs {
		b, okB := before[p.Name]
		a, okA := after[p.Name]
		if p.Variant == variant && okB && okA {
			fn(p.Name, b, a)
		}
	}
}

// refusedDuring is what each of variant's procs counted between the two
// readings, keyed "part: what"; counts that did not grow are left out.
func refusedDuring(before, after map[string]partReading, procs []Proc, variant string) map[string]uint64 {
	out := map[string]uint64{}
	eachPartReadTwice(before, after, procs, variant, func(part string, b, a partReading) {
		for what, n := range a.refused {
			if d := n - b.refused[what]; d > 0 {
				out[part+": "+what] = uint64(d)
			}
		}
	})
	if len(out) == 0 {
		return nil
	}
	return out
}

// EdgeCalls are one part's calls to one dependency during a step.
type EdgeCalls struct {
	Part       string  `json:"part"`
	Dependency string  `json:"dependency"`
	Calls      uint64  `json:"calls"`   // attempts that reached it, retries included
	MeanMs     float64 `json:"mean_ms"` // the wait for a pooled connection included
	Pool       int     `json:"pool"`    // connections to the dependency (--max-conns)
}

// callsDuring are the calls each of variant's procs made to its
// dependencies between the two readings, in procs' order.
func callsDuring(before, after map[string]partReading, procs []Proc, variant string) []EdgeCalls {
	var out []EdgeCalls
	eachPartReadTwice(before, after, procs, variant, func(part string, b, a partReading) {
		for _, dep := range slices.Sorted(maps.Keys(a.calls)) {
			n := a.calls[dep].count - b.calls[dep].count
			if n <= 0 {
				continue
			}
			mean := (a.calls[dep].seconds - b.calls[dep].seconds) / n * 1000
			out = append(out, EdgeCalls{Part: part, Dependency: dep, Calls: uint64(n),
				MeanMs: math.Round(mean*10) / 10, Pool: int(a.calls[dep].pool)})
		}
	})
	return out
}

// CallsLine renders a step's calls: "webserver-rpc → ratings-rpc 20000 at
// mean 240.1 ms (pool 10)".
func CallsLine(calls []EdgeCalls) string {
	parts := make([]string, len(calls))
	for i, c := range calls {
		parts[i] = fmt.Sprintf("%s → %s %d at mean %.1f ms (pool %d)", c.Part, c.Dependency, c.Calls, c.MeanMs, c.Pool)
	}
	return strings.Join(parts, ", ")
}

// CountsLine renders a step's failures or refusals, largest first:
// "webserver-rpc: bulkhead queue_full 4621, webserver-rpc: → ratings-rpc
// failure 12".
func CountsLine(counts map[string]uint64) string {
	keys := slices.Collect(maps.Keys(counts))
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, counts[k])
	}
	return strings.Join(parts, ", ")
}
