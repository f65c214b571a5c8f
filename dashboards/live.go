package dashboards

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/ratingslab/lab/lab/prom"
	"github.com/ratingslab/lab/services/lib/variantname"
)

// The live check looks at the last LiveWindow, at LiveStep resolution, as a
// Grafana panel would over that range.
const (
	LiveWindow = 10 * time.Minute
	LiveStep   = 2 * time.Second
)

// CheckLive runs every dashboard query against the Prometheus at promURL,
// with template variables substituted, and reports every query that
//   - does not parse with that Prometheus' own PromQL parser (format_query),
//   - returns no sample in the last LiveWindow for the variant it shows
//     (unless it shows an event, PanelQuery.OnEvent), or
//   - depends on a series selector (PanelQuery.Requires) that has no data,
//
// and every query variable whose dropdown would be empty. Queries of the
// variants not listed are skipped; the lab's own (faults, parts) are always
// checked, so a fault must have been active within the window.
// The lab must be up with load running and a fault injected.
func CheckLive(ctx context.Context, promURL string, variants []string) error {
	end := time.Now()
	start := end.Add(-LiveWindow)
	window := fmt.Sprintf("%ds", int(LiveWindow.Seconds()))
	checked := 0
	var problems []string
	present := map[string]error{} // selector → its check's result, run once

	for _, q := range Queries() {
		if q.Variant != VariantLab && !slices.Contains(variants, q.Variant) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("live check interrupted after %d queries: %w", checked, err)
		}
		checked++
		where := fmt.Sprintf("%s.json panel %d %q query %s (%s)", q.Dashboard, q.PanelID, q.PanelTitle, q.RefID, q.Variant)
		if _, err := prom.Parse(ctx, promURL, q.Expr); err != nil {
			problems = append(problems, fmt.Sprintf("%s: does not parse: %v\n    %s", where, err, q.Expr))
			continue
		}
		r, err := prom.QueryRange(ctx, promURL, q.Expr, start, end, LiveStep)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v\n    %s", where, err, q.Expr))
			continue
		}
		if !hasNumber(r) && !q.OnEvent {
			problems = append(problems, fmt.Sprintf("%s: no data for variant %s\n    %s", where, q.Variant, q.Expr))
		}
		for _, s := range q.Requires {
			err, done := present[s]
			if !done {
				err = checkPresent(ctx, promURL, s, window)
				present[s] = err
			}
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", where, err))
			}
		}
	}

	for _, v := range VariableQueries() {
		if !slices.Contains(variants, v.Variant) {
			continue
		}
		checked++
		values, err := prom.LabelValues(ctx, promURL, v.Label, v.Match, start, end)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s.json variable $%s: %v", v.Dashboard, v.Name, err))
		case len(values) == 0:
			problems = append(problems, fmt.Sprintf("%s.json variable $%s: label_values(%s, %s) is empty", v.Dashboard, v.Name, v.Match, v.Label))
		}
	}

	if checked == 0 {
		return fmt.Errorf("live check: no query for variants %v (known: %s, %s)", variants, variantname.RPC, variantname.Stream)
	}
	if len(problems) > 0 {
		return errors.New(fmt.Sprintf("live check: %d problem(s) in %d dashboard queries against %s:\n", len(problems), checked, promURL) +
			strings.Join(problems, "\n"))
	}
	return nil
}

// checkPresent wants at least one series of selector within the window.
func checkPresent(ctx context.Context, promURL, selector, window string) error {
	r, err := prom.Query(ctx, promURL, "present_over_time("+selector+"["+window+"])")
	if err != nil {
		return fmt.Errorf("required series %s: %w", selector, err)
	}
	if r.Empty() {
		return fmt.Errorf("required series %s: none in the last %s", selector, window)
	}
	return nil
}

// hasNumber reports whether any point is a number: a histogram quantile of
// a histogram without observations is NaN throughout, which Grafana draws
// as nothing.
func hasNumber(r prom.Result) bool {
	for _, s := range r.Series {
		for _, p := range s.Points {
			if !math.IsNaN(p.Value) {
				return true
			}
		}
	}
	return false
}
