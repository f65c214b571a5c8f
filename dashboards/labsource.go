package dashboards

import (
	"reflect"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/table"
)

// The lab's own data source (dashboards/plugin): what Prometheus cannot
// give — faults as applied, verdicts, audits, exact latencies — read from
// the journals and ledgers. Provisioned as
// provisioning/datasources/lab-journals.yaml.
const (
	LabDatasourceUID  = "lab-journals"
	LabDatasourceType = "ratingslab-lab-datasource"
)

var labDatasource = common.DataSourceRef{Type: ptr(LabDatasourceType), Uid: ptr(LabDatasourceUID)}

// LabQuery is a target of the lab data source: its JSON query model
// (dashboards/plugin/README.md). QueryType is one the plugin implements (a
// test of the plugin reads every committed dashboard to check).
type LabQuery struct {
	RefID      string                `json:"refId,omitempty"`
	Datasource *common.DataSourceRef `json:"datasource,omitempty"`
	QueryType  string                `json:"queryType"`
	Run        string                `json:"run,omitempty"`
	Variant    string                `json:"variant,omitempty"`
	Requests   string                `json:"requests,omitempty"`
}

func (LabQuery) ImplementsDataqueryVariant() {}
func (LabQuery) DataqueryType() string       { return LabDatasourceType }
func (LabQuery) Validate() error             { return nil }
func (q LabQuery) Equals(other variants.Dataquery) bool {
	o, ok := other.(LabQuery)
	return ok && reflect.DeepEqual(q, o)
}

// Build makes a LabQuery its own foundation-sdk builder.
func (q LabQuery) Build() (variants.Dataquery, error) {
	q.Datasource = &labDatasource
	return q, nil
}

var _ cog.Builder[variants.Dataquery] = LabQuery{}

func (p panel) labTargets() []cog.Builder[variants.Dataquery] {
	var ts []cog.Builder[variants.Dataquery]
	for i, q := range p.lab {
		q.RefID = string(rune('A' + i))
		ts = append(ts, q)
	}
	return ts
}

// labFaultsAnnotation marks every fault window the journals hold (and the
// running lab's faults no journal holds yet), with kind, targets and
// parameters: beside the Prometheus one, which knows only that a fault
// was active on a target.
func labFaultsAnnotation(variant string) *dashboard.AnnotationQueryBuilder {
	return dashboard.NewAnnotationQueryBuilder().
		Name("Faults (lab journals)").
		Datasource(labDatasource).
		Enable(true).
		IconColor("purple").
		Target(LabQuery{QueryType: "faults", Variant: variant})
}

// labTable is a table of the lab data source.
func (p panel) labTable() cog.Builder[dashboard.Panel] {
	return table.NewPanelBuilder().
		Id(p.id).
		Title(p.title).
		Description(p.description).
		Datasource(labDatasource).
		Span(p.width).
		Height(p.height).
		Targets(p.labTargets()).
		CellHeight(common.TableCellHeightSm).
		Footer(common.NewTableFooterOptionsBuilder().Show(false).Reducer([]string{}))
}

// experimentsTable lists the runs in the time range with their verdicts.
func experimentsTable(id uint32) panel {
	return panel{
		id: id, kind: labTable, variant: VariantLab, width: 12, height: 8,
		title:       "Experiments — runs in this time range and their verdicts",
		description: "One row per `lab chaos run` (and `lab load`) whose run overlaps the time range, from its journal: title, variants, verdict per variant (PASS when every probe held and the audit found nothing), faults, seed. Pick a run's time span to see it on the charts.",
		lab:         []LabQuery{{QueryType: "experiments"}},
	}
}

// auditTable is the audit of the runs in the range, per variant and source.
func auditTable(id uint32, variant string) panel {
	return panel{
		id: id, kind: labTable, variant: VariantLab, width: 12, height: 8,
		title:       "Verdict and audit — what each variant kept of what it acknowledged",
		description: "Per run, variant and source (api: the public view; store: the variant's own store), from the journal: the ledger's tallies and the audit's findings — lost, duplicated and phantom ratings are bugs; ambiguous ones (504, no answer) may go either way. docs/report.md defines each.",
		lab:         []LabQuery{{QueryType: "audit", Variant: variant}},
	}
}

// recoveryTable is each fault's detection and recovery times.
func recoveryTable(id uint32, variant string) panel {
	return panel{
		id: id, kind: labTable, variant: VariantLab, width: 12, height: 8,
		title:       "Recovery — per fault: time to detect, back after heal, error budget",
		description: "Per fault of the runs in the time range, from the journal's per-second samples: which signals the fault moved out of their baseline band, how long until clients saw it and until each was back after the heal (empty: untouched or never), failures during the fault and the error budget burned.",
		lab:         []LabQuery{{QueryType: "recovery", Variant: variant}},
	}
}

// exactLatency is the per-second client latency from the ledgers: the
// exact figures beside the histogram-interpolated panel above.
func exactLatency(id uint32, variant string) panel {
	return panel{
		id: id, kind: timeSeries, variant: variant, width: 12, height: 8, unit: "s",
		title:       variantTitle(variant) + " · exact latency p50 / p99 / max — from the ledger",
		description: "Per second, nearest-rank percentiles of every request of the runs' ledgers that ended in that second, from the moment it was sent: exact, where the Prometheus panel interpolates within 9 %. Only runs of `lab chaos run` / `lab load` have a ledger.",
		lab:         []LabQuery{{QueryType: "latency", Variant: variant}},
	}
}
