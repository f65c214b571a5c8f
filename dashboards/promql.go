package dashboards

import (
	"strings"
)

// rateWindow is Grafana's $__rate_interval: at least four scrape intervals
// (the datasource declares 1s), growing as the time range widens.
const rateWindow = "$__rate_interval"

// sel is a series selector, metric{matchers...}.
func sel(metric string, matchers ...string) string {
	if len(matchers) == 0 {
		return metric
	}
	return metric + "{" + strings.Join(matchers, ",") + "}"
}

func eq(label, value string) string  { return label + `="` + value + `"` }
func re(label, value string) string  { return label + `=~"` + value + `"` }
func nre(label, value string) string { return label + `!~"` + value + `"` }

func rate(selector string) string { return "rate(" + selector + "[" + rateWindow + "])" }

func sumBy(labels, expr string) string { return "sum by (" + labels + ") (" + expr + ")" }
func maxBy(labels, expr string) string { return "max by (" + labels + ") (" + expr + ")" }

// quantile is the q-quantile of a classic histogram per `by` labels.
func quantile(q, by, bucketSelector string) string {
	return "histogram_quantile(" + q + ", " + sumBy("le, "+by, rate(bucketSelector)) + ")"
}

// rateOrZero is the per-second rate of the `matching` series, plus a zero
// series for every `all` series that has no match: summed by a subset of
// labels it reads 0 (not "No data") while nothing matches, e.g. no errors yet.
func rateOrZero(matching, all string) string {
	return rate(matching) + " or 0 * " + rate(all)
}

// shareBy is the fraction of `all`'s rate that `matching` makes up, per
// `by` labels: 0 when nothing matches, absent when there is no traffic.
func shareBy(by, matching, all string) string {
	return sumBy(by, rateOrZero(matching, all)) + " / " + sumBy(by, rate(all))
}

// orNone fills an expression that may have no series at all (a counter that
// appears with its first event) with one zero series whose `label` is "none".
func orNone(expr, label string) string {
	return expr + ` or on () label_replace(vector(0), "` + label + `", "none", "", "")`
}
