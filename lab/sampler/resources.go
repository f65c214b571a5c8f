package sampler

import (
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"

	"github.com/ratingslab/lab/lab/journal"
)

// Metrics of the bounded resources every service part has (services/serve's
// bulkhead, services/breaker's pools and calls).
const (
	metricInFlight    = "lab_http_inflight_requests"
	metricQueued      = "lab_http_queued_requests"
	metricPoolSize    = "lab_dependency_pool_connections"
	metricPoolInUse   = "lab_dependency_pool_in_use_connections"
	metricPoolWaiting = "lab_dependency_pool_waiting_calls"
	metricCalls       = "lab_dependency_calls_total"
	resultLabel       = "result"
	resultRejected    = "rejected"
	routeLabel        = "route"
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
		if f := fams[metricInFlight]; f != nil {
			smp.Set(journal.PartSeries(journal.SeriesPartInFlight, part), counterSum(fams, metricInFlight, nil))
			smp.Set(journal.PartSeries(journal.SeriesPartQueued, part), counterSum(fams, metricQueued, nil))
		}
		for dep, size := range perDependency(fams, metricPoolSize) {
			if size > 0 {
				smp.Set(journal.EdgeSeries(journal.SeriesPoolUtilisation, part, dep), perDependency(fams, metricPoolInUse)[dep]/size)
			}
			smp.Set(journal.EdgeSeries(journal.SeriesPoolWaiting, part, dep), perDependency(fams, metricPoolWaiting)[dep])
		}
		pd, has := deltas[part]
		if !has || pd.seconds <= 0 {
			continue
		}
		if fams[metricHTTPRequests] != nil {
			served := counterDelta(pd, metricHTTPRequests, func(m *dto.Metric) bool { return !infraRoute(labelOf(m, routeLabel)) })
			smp.Set(journal.PartSeries(journal.SeriesPartRPS, part), served/pd.seconds)
		}
		if f := fams[metricCalls]; f != nil {
			deps := map[string]bool{}
			for _, m := range f.GetMetric() {
				deps[labelOf(m, dependencyLabel)] = true
			}
			for dep := range deps {
				n := counterDelta(pd, metricCalls, func(m *dto.Metric) bool {
					return labelOf(m, dependencyLabel) == dep && labelOf(m, resultLabel) != resultRejected
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
		out[labelOf(m, dependencyLabel)] += m.GetGauge().GetValue()
	}
	return out
}
