// Package dashboards builds the lab's Grafana dashboards as Go code with the
// Grafana Foundation SDK and writes them as JSON into dashboards/json (`make
// dashboards`):
//
//   - overview.json — "RPC vs Log — overview": both variants side by side,
//     one row per signal, RPC left (blue), log right (orange);
//   - rpc.json, stream.json — one drill-down per variant: RED per service,
//     outbound calls, runtime;
//   - kafka.json — topics, partitions, consumer groups.
//
// Every panel is first described as a plain value (board, row, panel, query
// in this file); the SDK rendering (render.go), the list of panel queries for
// the live check (Queries, CheckLive) and the tests all read those values,
// so what is checked against Prometheus is exactly what Grafana runs.
package dashboards

import "github.com/ratingslab/lab/services/lib/variantname"

// VariantLab is the `variant` label of the supervisor's view (faults,
// parts) beside the two integration patterns (services/lib/variantname).
const VariantLab = "lab"

// DatasourceUID is the provisioned Prometheus datasource
// (provisioning/datasources/prometheus.yaml); panels reach it through the
// $datasource variable, which defaults to it.
const DatasourceUID = "lab-prometheus"

// board is one dashboard.
type board struct {
	file        string // json/<file>.json; also PanelQuery.Dashboard
	uid         string
	title       string
	description string
	tags        []string
	// variant is the value of the hidden $variant constant of a drill-down
	// dashboard ("" when the dashboard has none).
	variant string
	// colourByVariant paints each panel in its variant's colour (the
	// overview); otherwise series are coloured by name.
	colourByVariant bool
	vars            []variable
	rows            []row
}

// row is a full-width, expanded row header with its panels below it.
type row struct {
	id     uint32
	title  string
	panels []panel
}

type panelKind int

const (
	timeSeries    panelKind = iota
	stateTimeline           // discrete states: breakers, faults, parts up
	labTable                // a table of the lab data source (labsource.go)
)

// panel is one visualisation. Panel ids are written by hand and never
// reused: links and annotations refer to them, so they must not move when
// a panel is added.
type panel struct {
	id          uint32
	title       string
	description string
	kind        panelKind
	// variant says whose data the panel shows (rpc, stream or lab): it picks
	// the colour and tells the live check which variant must have data.
	variant string
	unit    string
	min     *float64
	max     *float64
	width   uint32 // grid columns of 24
	height  uint32
	stacked bool
	queries []query
	// lab are queries of the lab data source instead of Prometheus
	// (labsource.go); a panel has either queries or lab.
	lab []LabQuery
	// states maps values to names and colours for state timelines.
	states []state
	// colours pins series (by legend regexp) to a colour where meaning beats
	// the variant's colour: green success, red failure.
	colours []seriesColour
}

// query is one panel target.
type query struct {
	expr   string
	legend string
	// requires are series selectors that must hold data for the panel to be
	// meaningful. Queries that fill gaps with zeros (so "no errors" reads as
	// 0, not "No data") would pass the live check on a misspelt metric or
	// label value; the live check also runs these selectors to catch that.
	requires []string
	// onEvent marks a query that has samples only in a window where its
	// event happened (a restore time: only after partitions changed
	// hands); its gaps are the honest picture. The live check then asks
	// only that its required series exist.
	onEvent bool
}

type state struct {
	value  string
	text   string
	colour string
}

type seriesColour struct {
	match  string // regexp over the series' display name
	colour string
}

// variable is a dashboard template variable.
type variable struct {
	name    string
	display string // the label shown above the dropdown
	kind    variableKind
	// values are the comma-separated values of a custom variable, or the
	// value of a constant.
	values string
	// A query variable lists label_values(match, label).
	match, label string
	// live is what the live check substitutes for $name: ".+" stands for
	// "All" (every variable with includeAll has allValue ".+").
	live string
}

type variableKind int

const (
	queryVariable variableKind = iota
	customVariable
	constantVariable
)

// allValue is the "All" option of multi-value variables: a regex matching
// every value, used with =~.
const allValue = ".+"

func (v variable) labelValues() string { return "label_values(" + v.match + ", " + v.label + ")" }

func ptr[T any](v T) *T { return &v }

// boards lists every dashboard in generation order.
func boards() []board {
	return []board{overview(), drillDown(variantname.RPC), drillDown(variantname.Stream), kafka()}
}
