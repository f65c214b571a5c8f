package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"

	"github.com/ratingslab/lab/services/lib/variantname"
)

// Variant colours: the same everywhere in the overview, so a glance tells
// which side is which.
var variantColour = map[string]string{variantname.RPC: "blue", variantname.Stream: "orange", VariantLab: "red"}

// datasource is the $datasource variable every panel and query uses.
var datasource = common.DataSourceRef{Type: ptr("prometheus"), Uid: ptr("${datasource}")}

// Generate renders every dashboard as indented JSON, keyed by file name
// ("overview.json", ...): the content of dashboards/json.
func Generate() (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, b := range boards() {
		d, err := b.build()
		if err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", b.file, err)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false) // keep PromQL's > and & readable in review
		enc.SetIndent("", "  ")
		if err := enc.Encode(d); err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", b.file, err)
		}
		files[b.file+".json"] = buf.Bytes()
	}
	return files, nil
}

// The dashboards are the classic (v1) JSON model, which the SDK marks
// deprecated in favour of dashboardv2. v1 stays: the compose stack pins
// Grafana 12.2, where schema v2 is experimental (behind the
// dynamic-dashboards and kubernetesDashboards feature toggles, "not for
// production"), file provisioning loads classic JSON, and native labs run
// whatever Grafana 11 or 12 is installed.
//
//lint:ignore SA1019 classic v1 JSON on purpose, see above
func (b board) build() (dashboard.Dashboard, error) {
	//lint:ignore SA1019 classic v1 JSON on purpose, see above
	db := dashboard.NewDashboardBuilder(b.title).
		Uid(b.uid).
		Description(b.description).
		Tags(b.tags).
		Editable().
		Tooltip(dashboard.DashboardCursorSyncCrosshair). // one moment across all panels: follow a cascade
		Refresh("5s").
		Time("now-15m", "now").
		Timezone("browser").
		Timepicker(dashboard.NewTimePickerBuilder().RefreshIntervals([]string{"5s", "10s", "30s", "1m", "5m"})).
		Link(dashboard.NewDashboardLinkBuilder("Ratings lab").
			Type(dashboard.DashboardLinkTypeDashboards).
			Tags([]string{"ratings-lab"}).
			AsDropdown(true).
			KeepTime(true)).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").
			Label("Prometheus").
			Type("prometheus").
			Current(dashboard.VariableOption{
				Text:  dashboard.StringOrArrayOfString{String: ptr("Prometheus")},
				Value: dashboard.StringOrArrayOfString{String: ptr(DatasourceUID)},
			}))
	for _, v := range b.vars {
		db.WithVariable(v.builder())
	}
	fq := faultsQuery()
	db.Annotation(dashboard.NewAnnotationQueryBuilder().
		Name("Faults").
		Datasource(datasource).
		Enable(true).
		IconColor("red").
		Expr(fq.expr).
		Step("1s").
		TitleFormat("{{fault}}").
		TextFormat(fq.legend).
		TagKeys("fault,target"))
	db.Annotation(labFaultsAnnotation(b.variant))
	for _, r := range b.rows {
		db.WithRow(dashboard.NewRowBuilder(r.title).Id(r.id))
		for _, p := range r.panels {
			db.WithPanel(p.builder(b.colourByVariant))
		}
	}
	d, err := db.Build()
	if err != nil {
		return d, err
	}
	// The SDK tucks annotation toggles and links into Grafana 12's controls
	// menu; a user watching a fault wants the toggle in sight, and older
	// Grafana versions do not know the field.
	for i := range d.Annotations.List {
		d.Annotations.List[i].Placement = nil
	}
	for i := range d.Links {
		d.Links[i].Placement = nil
	}
	return d, nil
}

func (v variable) builder() cog.Builder[dashboard.VariableModel] {
	all := dashboard.VariableOption{
		Selected: ptr(true),
		Text:     dashboard.StringOrArrayOfString{ArrayOfString: []string{"All"}},
		Value:    dashboard.StringOrArrayOfString{ArrayOfString: []string{"$__all"}},
	}
	switch v.kind {
	case constantVariable:
		return dashboard.NewConstantVariableBuilder(v.name).
			Value(dashboard.StringOrMap{String: ptr(v.values)})
	case customVariable:
		return dashboard.NewCustomVariableBuilder(v.name).
			Label(v.display).
			Values(dashboard.StringOrMap{String: ptr(v.values)}).
			Multi(true).IncludeAll(true).AllValue(allValue).
			Current(all)
	default:
		q := v.labelValues()
		return dashboard.NewQueryVariableBuilder(v.name).
			Label(v.display).
			Datasource(datasource).
			Query(dashboard.StringOrMap{String: ptr(q)}).
			Definition(q).
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
			Sort(dashboard.VariableSortAlphabeticalAsc).
			Multi(true).IncludeAll(true).AllValue(allValue).
			Current(all)
	}
}

func (p panel) targets() []cog.Builder[variants.Dataquery] {
	if len(p.lab) > 0 {
		return p.labTargets()
	}
	var ts []cog.Builder[variants.Dataquery]
	for i, q := range p.queries {
		ts = append(ts, prometheus.NewDataqueryBuilder().
			RefId(string(rune('A'+i))).
			Datasource(datasource).
			Expr(q.expr).
			LegendFormat(q.legend).
			Range())
	}
	return ts
}

// colourScheme: the overview colours series by variant (shades of its
// colour); drill-downs colour by series name, stable across panels.
func (p panel) colourScheme(byVariant bool) *dashboard.FieldColorBuilder {
	if byVariant {
		return dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdShades).FixedColor(variantColour[p.variant])
	}
	return dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdPaletteClassicByName)
}

func fixedColour(c string) []dashboard.DynamicConfigValue {
	return []dashboard.DynamicConfigValue{{Id: "color", Value: map[string]any{"mode": "fixed", "fixedColor": c}}}
}

func legend() *common.VizLegendOptionsBuilder {
	return common.NewVizLegendOptionsBuilder().
		ShowLegend(true).
		DisplayMode(common.LegendDisplayModeTable).
		Placement(common.LegendPlacementBottom).
		Calcs([]string{"lastNotNull", "max"})
}

func tooltip() *common.VizTooltipOptionsBuilder {
	return common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending)
}

func (p panel) builder(byVariant bool) cog.Builder[dashboard.Panel] {
	switch p.kind {
	case stateTimeline:
		return p.stateTimeline()
	case labTable:
		return p.labTable()
	default:
		return p.timeSeries(byVariant)
	}
}

// datasourceRef is the panel's data source: the lab's own for lab
// queries, Prometheus (through $datasource) otherwise.
func (p panel) datasourceRef() common.DataSourceRef {
	if len(p.lab) > 0 {
		return labDatasource
	}
	return datasource
}

func (p panel) timeSeries(byVariant bool) cog.Builder[dashboard.Panel] {
	b := timeseries.NewPanelBuilder().
		Id(p.id).
		Title(p.title).
		Description(p.description).
		Datasource(p.datasourceRef()).
		Span(p.width).
		Height(p.height).
		Unit(p.unit).
		Targets(p.targets()).
		Legend(legend()).
		Tooltip(tooltip()).
		ColorScheme(p.colourScheme(byVariant)).
		LineWidth(1).
		FillOpacity(10).
		ShowPoints(common.VisibilityModeNever)
	if p.min != nil {
		b.Min(*p.min)
	}
	if p.max != nil {
		b.Max(*p.max)
	}
	if p.stacked {
		b.Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal)).FillOpacity(40)
	}
	for _, c := range p.colours {
		b.OverrideByRegexp(c.match, fixedColour(c.colour))
	}
	if len(p.lab) > 0 {
		// The lab's latency frames carry the second's request count
		// beside the percentiles: a count, on its own axis.
		b.OverrideByRegexp(".*requests$", []dashboard.DynamicConfigValue{
			{Id: "unit", Value: "none"},
			{Id: "custom.axisPlacement", Value: "right"},
			{Id: "custom.lineStyle", Value: map[string]any{"fill": "dash", "dash": []int{4, 4}}},
		})
	}
	return b
}

func (p panel) stateTimeline() cog.Builder[dashboard.Panel] {
	options := map[string]dashboard.ValueMappingResult{}
	for i, s := range p.states {
		options[s.value] = dashboard.ValueMappingResult{Text: ptr(s.text), Color: ptr(s.colour), Index: ptr(int32(i))}
	}
	b := statetimeline.NewPanelBuilder().
		Id(p.id).
		Title(p.title).
		Description(p.description).
		Datasource(datasource).
		Span(p.width).
		Height(p.height).
		Targets(p.targets()).
		Legend(legend().DisplayMode(common.LegendDisplayModeList).Calcs([]string{})).
		Tooltip(tooltip()).
		ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdFixed).FixedColor("transparent")).
		Mappings([]dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{Type: dashboard.MappingTypeValueToText, Options: options}}}).
		ShowValue(common.VisibilityModeNever).
		MergeValues(true).
		RowHeight(0.9).
		FillOpacity(80)
	if p.unit != "" {
		b.Unit(p.unit)
	}
	return b
}
