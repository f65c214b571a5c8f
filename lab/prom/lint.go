package prom

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
)

// MaxSeriesPerFamily bounds one metric family in one scrape. The lab's label
// sets are small enumerations (routes, dependencies, topics × 6 partitions);
// more than this means an id slipped into a label.
const MaxSeriesPerFamily = 200

// Lint scrapes metricsURL (a part's /metrics) in the text format and checks
// it with client_golang's promlint (names, units, help, counter suffixes)
// plus the lab's rules: lab metrics live under lab_, no id-like labels,
// bounded series counts, and classic histograms with explicit buckets (so
// `_bucket` queries work on Prometheus 2.42 and 3.x alike).
func Lint(ctx context.Context, metricsURL string) ([]promlint.Problem, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return nil, err
	}
	// Ask for the classic text format: promlint reads nothing else, and a
	// native-only histogram would not show buckets in it.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return nil, fmt.Errorf("GET %s: HTTP %d: %s", metricsURL, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	l := promlint.New(io.LimitReader(resp.Body, 32<<20))
	l.AddCustomValidations(LintNamespace, LintBoundedLabels, LintClassicHistogram)
	problems, err := l.Lint()
	if err != nil {
		return nil, fmt.Errorf("GET %s: not the Prometheus text format: %w", metricsURL, err)
	}
	return problems, nil
}

// Standard collectors' namespaces, allowed beside lab_.
var standardPrefixes = []string{"lab_", "go_", "process_", "promhttp_"}

// LintNamespace wants every metric in the lab's namespace (or a standard
// collector's), so dashboards can find them.
func LintNamespace(mf *dto.MetricFamily) []error {
	for _, p := range standardPrefixes {
		if strings.HasPrefix(mf.GetName(), p) {
			return nil
		}
	}
	return []error{fmt.Errorf("metric outside the lab_ namespace (docs/architecture.md, table Metrics)")}
}

// idLabels are labels whose values grow without bound.
var idLabels = map[string]bool{"id": true, "request_id": true, "user_id": true, "movie_id": true,
	"offset": true, "key": true, "url": true, "path": true, "error": true, "message": true}

// LintBoundedLabels rejects id-like labels and families with too many series.
func LintBoundedLabels(mf *dto.MetricFamily) []error {
	var errs []error
	seen := map[string]bool{}
	for _, m := range mf.GetMetric() {
		for _, lp := range m.GetLabel() {
			name := lp.GetName()
			if seen[name] {
				continue
			}
			seen[name] = true
			if idLabels[name] || strings.HasSuffix(name, "_id") {
				errs = append(errs, fmt.Errorf("label %q is unbounded (an id); keep ids out of labels", name))
			}
		}
	}
	if n := len(mf.GetMetric()); n > MaxSeriesPerFamily {
		errs = append(errs, fmt.Errorf("%d series in one scrape (more than %d): a label set is unbounded", n, MaxSeriesPerFamily))
	}
	return errs
}

// LintClassicHistogram wants histograms with explicit buckets: a histogram
// whose only bucket is +Inf (or a native-only one) cannot answer
// histogram_quantile on Prometheus 2.42.
func LintClassicHistogram(mf *dto.MetricFamily) []error {
	if mf.GetType() != dto.MetricType_HISTOGRAM {
		return nil
	}
	for _, m := range mf.GetMetric() {
		finite := 0
		for _, b := range m.GetHistogram().GetBucket() {
			if !math.IsInf(b.GetUpperBound(), +1) {
				finite++
			}
		}
		if finite == 0 {
			return []error{fmt.Errorf("histogram without explicit buckets; give it classic buckets")}
		}
	}
	return nil
}
