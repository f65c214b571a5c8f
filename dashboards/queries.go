package dashboards

import (
	"regexp"
	"strings"

	"github.com/ratingslab/lab/services/lib/variantname"
)

// LiveRateInterval is what the live check substitutes for $__rate_interval:
// what Grafana computes for the default 15-minute range with the 1s scrape
// interval the datasource declares (max(interval + scrape, 4 × scrape)).
const LiveRateInterval = "4s"

// PanelQuery is one query of one panel (or the fault annotation) with the
// template variables substituted as the live check runs it.
type PanelQuery struct {
	Dashboard  string // file name without .json: overview, rpc, stream, kafka
	PanelID    uint32 // 0 for the dashboard's fault annotation
	PanelTitle string
	RefID      string
	Expr       string
	// Variant whose data the query shows: rpc, stream, or lab (the
	// supervisor's faults and parts). It must return data for it.
	Variant string
	// Requires are series selectors the query depends on that must hold
	// data too (see query.requires).
	Requires []string
	// OnEvent: the query has samples only around its event (see
	// query.onEvent); only Requires must hold data.
	OnEvent bool
}

// VariableQuery is a template variable's label_values(Match, Label) with
// the variables it refers to substituted.
type VariableQuery struct {
	Dashboard string
	Name      string
	Label     string
	Match     string
	Variant   string // the variant the dropdown lists parts of
}

// Queries lists every panel query of every dashboard, the annotation
// included, with template variables substituted per variant: $variant is
// the drill-down's variant, multi-value variables are "All" (.+), and
// $__rate_interval is LiveRateInterval.
func Queries() []PanelQuery {
	var qs []PanelQuery
	for _, b := range boards() {
		sub := b.substituter()
		fq := faultsQuery()
		qs = append(qs, PanelQuery{
			Dashboard: b.file, PanelID: 0, PanelTitle: "annotation: Faults", RefID: "annotation",
			Expr: sub(fq.expr), Variant: VariantLab, Requires: subAll(sub, fq.requires),
		})
		for _, r := range b.rows {
			for _, p := range r.panels {
				for i, q := range p.queries {
					qs = append(qs, PanelQuery{
						Dashboard: b.file, PanelID: p.id, PanelTitle: p.title, RefID: string(rune('A' + i)),
						Expr: sub(q.expr), Variant: p.variant, Requires: subAll(sub, q.requires), OnEvent: q.onEvent,
					})
				}
			}
		}
	}
	return qs
}

// VariableQueries lists the query variables of every dashboard.
func VariableQueries() []VariableQuery {
	var vs []VariableQuery
	for _, b := range boards() {
		sub := b.substituter()
		variant := b.variant
		if variant == "" {
			variant = variantname.Stream // only the Kafka dashboard has query variables without a $variant
		}
		for _, v := range b.vars {
			if v.kind == queryVariable {
				vs = append(vs, VariableQuery{Dashboard: b.file, Name: v.name, Label: v.label, Match: sub(v.match), Variant: variant})
			}
		}
	}
	return vs
}

// grafanaVariable matches $name and ${name} references.
var grafanaVariable = regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`)

// substituter replaces the board's variables (and $__rate_interval) by
// their live values; unknown references stay, so the parser rejects them.
func (b board) substituter() func(string) string {
	values := map[string]string{"__rate_interval": LiveRateInterval}
	for _, v := range b.vars {
		values[v.name] = v.live
	}
	return func(s string) string {
		return grafanaVariable.ReplaceAllStringFunc(s, func(ref string) string {
			name := strings.Trim(ref, "${}")
			if v, ok := values[name]; ok {
				return v
			}
			return ref
		})
	}
}

func subAll(sub func(string) string, ss []string) []string {
	var out []string
	for _, s := range ss {
		out = append(out, sub(s))
	}
	return out
}
