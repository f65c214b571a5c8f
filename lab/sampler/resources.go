package sampler

import (
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"

	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/services/lib/metricname"
)

// Labels of the bounded resources' metrics every service part has
// (services/lib/serve's bulkhead, services/lib/breaker's pools and calls).
const (
	resultLabel    = "result"
	resultRejected = "rejected"
	routeLabel     = "route"
)

// resources derives, per part of the variant, the requests it served per
// second and its bulkhead's use, and per edge its pool's use and the call
// attempts per second (retry amplification shows there).
func (d *Deriver) resources(smp *journal.Sample, deltas map[string]partDelta, s Scrape) {
	parts := make([]string, 0, len(s.Families))
	for part := range s.Families {
		if d.partVariant[part] == smp.Variant {
			parts = append(parts, part)
		}
	}
	sort.Strings(parts)
	for _, part := range parts {
		fams := s.Families[part]
		if f := fams[metricname.HTTPInflightRequests]; f != nil {
			smp.Set(journal.PartSeries(journal.SeriesPartInFlight, part), counterSum(fams, metricname.HTTPInflightRequests, nil))
			smp.Set(journal.PartSeries(journal.SeriesPartQueued, part), counterSum(fams, metricname.HTTPQueuedRequests, nil))
		}
		for dep, size := range perDependency(fams, metricname.DependencyPoolConnections) {
			if size > 0 {
				smp.Set(journal.EdgeSeries(journal.SeriesPoolUtilisation, part, dep), perDependency(fams, metricname.DependencyPoolInUseConnections)[dep]/size)
			}
			smp.Set(journal.EdgeSeries(journal.SeriesPoolWaiting, part, dep), perDependency(fams, metricname.DependencyPoolWaitingCalls)[dep])
		}
		pd, has := deltas[part]
		if !has || pd.seconds <= 0 {
			continue
		}
		if fams[metricname.HTTPRequestsTotal] != nil {
			served := counterDelta(pd, metricname.HTTPRequestsTotal, func(m *dto.Metric) bool { return !infraRoute(Label(m, routeLabel)) })
			smp.Set(journal.PartSeries(journal.SeriesPartRPS, part), served/pd.seconds)
		}
		if f := fams[metricname.DependencyCallsTotal]; f != nil {
			deps := map[string]bool{}
			for _, m := range f.GetMetric() {
				deps[Label(m, dependencyLabel)] = true
			}
			for dep := range deps {
				n := counterDelta(pd, metricname.DependencyCallsTotal, func(m *dto.Metric) bool {
					return Label(m, dependencyLabel) == dep && Label(m, resultLabel) != resultRejected
				})
				smp.Set(journal.EdgeSeries(journal.SeriesEdgeCallsRPS, part, dep), n/pd.seconds)
			}
		}
	}
}

// infraRoute says a route is the part's own (scrapes, health probes,
// admin, profiling), not a request it serves.
func infraRoute(route string) bool {
	switch {
	case route == "/metrics", route == "/healthz", strings.HasPrefix(route, "/admin/"), strings.HasPrefix(route, "/debug/pprof/"):
		return true
	}
	return false
}

// perDependency sums a gauge per dependency label.
func perDependency(fams Families, name string) map[string]float64 {
	out := map[string]float64{}
	f := fams[name]
	if f == nil {
		return out
	}
	for _, m := range f.GetMetric() {
		out[Label(m, dependencyLabel)] += m.GetGauge().GetValue()
	}
	return out
}
