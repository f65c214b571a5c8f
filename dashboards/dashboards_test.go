package dashboards

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/ratingslab/lab/lab/prom"
	"github.com/ratingslab/lab/lab/prom/promtest"
	"github.com/ratingslab/lab/services/lib/variantname"
)

func generated(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestCommittedJSONIsTheGeneratorsOutput(t *testing.T) {
	files := generated(t)
	committed, err := filepath.Glob(filepath.Join("json", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range committed {
		if _, ok := files[filepath.Base(path)]; !ok {
			t.Errorf("%s is committed but no longer generated: run `make dashboards`", path)
		}
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join("json", name))
		if err != nil {
			t.Errorf("json/%s: %v: run `make dashboards`", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("json/%s differs from the generator's output: run `make dashboards` and commit the result", name)
		}
	}
	if want := []string{"kafka.json", "overview.json", "rpc.json", "stream.json"}; len(files) != len(want) {
		t.Errorf("generated %d dashboards, want %v", len(files), want)
	}
}

// strict decodes a dashboard with the SDK's strict decoder, which fails on
// unknown or mistyped fields. v0.0.22 returns a non-nil error wrapping an
// empty list even for valid input: an empty list is success.
//
//lint:ignore SA1019 the dashboards are classic v1 JSON on purpose (render.go says why)
func strict(raw []byte) (dashboard.Dashboard, error) {
	//lint:ignore SA1019 as above
	var d dashboard.Dashboard
	err := d.UnmarshalJSONStrict(raw)
	var list cog.BuildErrors
	if errors.As(err, &list) && len(list) == 0 {
		err = nil
	}
	return d, err
}

func TestDashboardsPassTheSDKStrictDecoder(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	for name, raw := range generated(t) {
		d, err := strict(raw)
		if err != nil {
			t.Errorf("%s: strict decode: %v", name, err)
			continue
		}
		if d.Uid == nil || *d.Uid == "" || len(d.Panels) == 0 {
			t.Errorf("%s: decoded without uid or panels", name)
		}
	}
	// The decoder is strict: an unknown field is an error.
	broken := bytes.Replace(generated(t)["kafka.json"], []byte(`"uid": "lab-kafka"`), []byte(`"uid": "lab-kafka", "uidd": 1`), 1)
	if _, err := strict(broken); err == nil {
		t.Error("strict decoder accepted an unknown field; the check above proves nothing")
	}
}

// jsonPanel is what the tests read back from the generated JSON.
type jsonPanel struct {
	Type        string `json:"type"`
	ID          uint32 `json:"id"`
	Title       string `json:"title"`
	Description string `json:"description"`
	GridPos     struct{ H, W, X, Y uint32 }
	Datasource  struct{ UID string } `json:"datasource"`
	Targets     []struct {
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
		RefID        string `json:"refId"`
		QueryType    string `json:"queryType"`
		Datasource   struct{ UID string }
	} `json:"targets"`
	Options struct {
		Legend struct {
			ShowLegend bool `json:"showLegend"`
		} `json:"legend"`
	} `json:"options"`
	FieldConfig struct {
		Defaults struct {
			Unit  string   `json:"unit"`
			Min   *float64 `json:"min"`
			Max   *float64 `json:"max"`
			Color struct {
				Mode       string `json:"mode"`
				FixedColor string `json:"fixedColor"`
			} `json:"color"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
}

type jsonDashboard struct {
	UID        string      `json:"uid"`
	Title      string      `json:"title"`
	Panels     []jsonPanel `json:"panels"`
	Templating struct {
		List []struct {
			Type, Name string
			AllValue   string `json:"allValue"`
		}
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Name       string
			Expr       string
			Datasource struct{ UID string }
			Target     struct {
				QueryType string `json:"queryType"`
			}
		}
	} `json:"annotations"`
}

func decode(t *testing.T, raw []byte) jsonDashboard {
	t.Helper()
	var d jsonDashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestPanelsHaveStableIDsUnitsLegendsAndTheLabDatasource(t *testing.T) {
	for name, raw := range generated(t) {
		d := decode(t, raw)
		ids := map[uint32]string{}
		for _, p := range d.Panels {
			if p.ID == 0 {
				t.Errorf("%s: panel %q has no id", name, p.Title)
			}
			if other, dup := ids[p.ID]; dup {
				t.Errorf("%s: panels %q and %q share id %d", name, other, p.Title, p.ID)
			}
			ids[p.ID] = p.Title
			if p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("%s: panel %q overflows the grid: %+v", name, p.Title, p.GridPos)
			}
			if p.Type == "row" {
				continue
			}
			if p.Description == "" {
				t.Errorf("%s: panel %q has no description", name, p.Title)
			}
			if p.Datasource.UID == LabDatasourceUID {
				// The lab data source's panels: its JSON query model
				// (the plugin's tests check the query types).
				for _, q := range p.Targets {
					if q.QueryType == "" || q.RefID == "" || q.Datasource.UID != LabDatasourceUID {
						t.Errorf("%s: panel %q has an incomplete lab query %+v", name, p.Title, q)
					}
				}
				if len(p.Targets) == 0 {
					t.Errorf("%s: panel %q has no query", name, p.Title)
				}
				continue
			}
			if p.Datasource.UID != "${datasource}" {
				t.Errorf("%s: panel %q datasource %q, want ${datasource}", name, p.Title, p.Datasource.UID)
			}
			if !p.Options.Legend.ShowLegend {
				t.Errorf("%s: panel %q has its legend off", name, p.Title)
			}
			if p.Type == "timeseries" && p.FieldConfig.Defaults.Unit == "" {
				t.Errorf("%s: panel %q has no unit", name, p.Title)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", name, p.Title)
			}
			for _, q := range p.Targets {
				if q.Expr == "" || q.LegendFormat == "" || q.RefID == "" || q.Datasource.UID != "${datasource}" {
					t.Errorf("%s: panel %q has an incomplete query %+v", name, p.Title, q)
				}
			}
		}
		// Ids are written by hand in rows of a hundred: row n00, its panels n01...
		for id, title := range ids {
			if id < 100 {
				t.Errorf("%s: panel %q id %d is outside the hand-numbered scheme", name, title, id)
			}
		}
		if a := d.Annotations.List; len(a) != 2 || !strings.Contains(a[0].Expr, "lab_fault_active") ||
			a[1].Datasource.UID != LabDatasourceUID || a[1].Target.QueryType != "faults" {
			t.Errorf("%s: annotations %+v, want the fault annotations from lab_fault_active and from the lab data source", name, a)
		}
		vars := d.Templating.List
		if len(vars) == 0 || vars[0].Name != "datasource" || vars[0].Type != "datasource" {
			t.Errorf("%s: first variable should be $datasource, got %+v", name, vars)
		}
		for _, v := range vars {
			if (v.Type == "query" || v.Type == "custom") && v.AllValue != allValue {
				t.Errorf("%s: variable $%s allValue %q, want %q (the live check substitutes it)", name, v.Name, v.AllValue, allValue)
			}
		}
	}
}

func TestDrillDownsHaveVariantAndPartVariables(t *testing.T) {
	for _, variant := range []string{variantname.RPC, variantname.Stream} {
		d := decode(t, generated(t)[variant+".json"])
		var names []string
		for _, v := range d.Templating.List {
			names = append(names, v.Type+":"+v.Name)
		}
		if want := []string{"datasource:datasource", "constant:variant", "query:part"}; !slices.Equal(names, want) {
			t.Errorf("%s.json variables %v, want %v", variant, names, want)
		}
	}
}

func TestOverviewShowsRPCLeftAndLogRightOnTheSameScale(t *testing.T) {
	d := decode(t, generated(t)["overview.json"])
	byY := map[uint32][]jsonPanel{}
	for _, p := range d.Panels {
		if p.Type != "row" {
			byY[p.GridPos.Y] = append(byY[p.GridPos.Y], p)
		}
	}
	rows := 0
	for _, ps := range byY {
		if strings.HasPrefix(ps[0].Title, "Active faults") {
			// The lab row: faults, parts and the machine, in thirds.
			var titles []string
			for _, p := range ps {
				titles = append(titles, p.Title)
				if p.GridPos.W != 8 {
					t.Errorf("lab row panel %q is %d wide, want a third (8)", p.Title, p.GridPos.W)
				}
			}
			if want := []string{"Active faults", "Parts up", "Machine CPU — busy, and used by each variant's parts"}; !slices.Equal(titles, want) {
				t.Errorf("lab row %q, want %q", titles, want)
			}
			continue
		}
		if len(ps) != 2 {
			t.Errorf("a row holds %d panels, want two side by side: %v", len(ps), ps)
			continue
		}
		left, right := ps[0], ps[1]
		if left.Type == "table" {
			continue // the journals' tables: runs and audits, both variants in each
		}
		if left.GridPos.X != 0 || right.GridPos.X != 12 || left.GridPos.W != 12 || right.GridPos.W != 12 {
			t.Errorf("row %q | %q is not split in halves: %+v %+v", left.Title, right.Title, left.GridPos, right.GridPos)
		}
		rows++
		if !strings.HasPrefix(left.Title, "RPC · ") || !strings.HasPrefix(right.Title, "Log · ") {
			t.Errorf("row %q | %q: want RPC left and Log right", left.Title, right.Title)
		}
		l, r := left.FieldConfig.Defaults, right.FieldConfig.Defaults
		sameSignal := strings.TrimPrefix(left.Title, "RPC · ") == strings.TrimPrefix(right.Title, "Log · ")
		if sameSignal && (l.Unit != r.Unit || !samePtr(l.Min, r.Min) || !samePtr(l.Max, r.Max)) {
			t.Errorf("row %q | %q: scales differ: %+v vs %+v", left.Title, right.Title, l, r)
		}
		if left.Type == "timeseries" && l.Color.Mode == "shades" && l.Color.FixedColor != "blue" {
			t.Errorf("%q colour %q, want RPC blue", left.Title, l.Color.FixedColor)
		}
		if right.Type == "timeseries" && r.Color.Mode == "shades" && r.Color.FixedColor != "orange" {
			t.Errorf("%q colour %q, want log orange", right.Title, r.Color.FixedColor)
		}
	}
	if rows != 9 {
		t.Errorf("%d signal rows, want 9 (success, latency, throughput, errors, back-pressure, shedding, failures, audit, exact latency)", rows)
	}
}

func samePtr(a, b *float64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func TestQueriesAreTheDashboardsQueriesWithVariablesSubstituted(t *testing.T) {
	qs := Queries()
	// Every Prometheus target of every generated panel, plus the
	// Prometheus annotation, is listed (the lab data source's are not
	// PromQL: the plugin's tests check them).
	want := map[string]int{}
	for name, raw := range generated(t) {
		d := decode(t, raw)
		for _, p := range d.Panels {
			for _, q := range p.Targets {
				if q.Datasource.UID != LabDatasourceUID {
					want[strings.TrimSuffix(name, ".json")]++
				}
			}
		}
		for _, a := range d.Annotations.List {
			if a.Expr != "" {
				want[strings.TrimSuffix(name, ".json")]++
			}
		}
	}
	got := map[string]int{}
	for _, q := range qs {
		got[q.Dashboard]++
		if strings.Contains(q.Expr, "$") {
			t.Errorf("%s panel %d: unsubstituted variable in %s", q.Dashboard, q.PanelID, q.Expr)
		}
		for _, s := range q.Requires {
			if strings.Contains(s, "$") {
				t.Errorf("%s panel %d: unsubstituted variable in required %s", q.Dashboard, q.PanelID, s)
			}
		}
		if !slices.Contains([]string{variantname.RPC, variantname.Stream, VariantLab}, q.Variant) {
			t.Errorf("%s panel %d: variant %q", q.Dashboard, q.PanelID, q.Variant)
		}
		if (q.Dashboard == "rpc" || q.Dashboard == "stream") && !strings.Contains(q.Expr, `variant="`+q.Dashboard+`"`) && q.PanelID != 0 {
			t.Errorf("%s panel %d: drill-down query without its variant: %s", q.Dashboard, q.PanelID, q.Expr)
		}
		if q.Dashboard == "overview" && q.Variant != VariantLab && !strings.Contains(q.Expr, `variant="`+q.Variant+`"`) {
			t.Errorf("overview panel %d (%s): query does not select its variant: %s", q.PanelID, q.Variant, q.Expr)
		}
	}
	for d, n := range want {
		if got[d] != n {
			t.Errorf("%s: Queries lists %d queries, the JSON holds %d", d, got[d], n)
		}
	}
	// The substitution is the live one: drill-down of rpc, every part, 4s windows.
	for _, q := range qs {
		if q.Dashboard == "rpc" && q.PanelID == 101 {
			if want := `sum by (part, route) (rate(lab_http_requests_total{variant="rpc",part=~".+",route!~"/metrics|/healthz|/admin/.*|/debug/pprof/.*"}[4s]))`; q.Expr != want {
				t.Errorf("rpc panel 101 live query\n got %s\nwant %s", q.Expr, want)
			}
		}
	}
	// Both variants have every client-side signal in the overview.
	for _, v := range []string{variantname.RPC, variantname.Stream} {
		n := 0
		for _, q := range qs {
			if q.Dashboard == "overview" && q.Variant == v {
				n++
			}
		}
		if n < 10 {
			t.Errorf("overview has %d queries for %s", n, v)
		}
	}
}

func TestVariableQueriesSubstituteTheVariant(t *testing.T) {
	var got []string
	for _, v := range VariableQueries() {
		got = append(got, v.Dashboard+" $"+v.Name+" "+v.Label+" "+v.Match)
	}
	for _, want := range []string{
		`rpc $part part up{variant="rpc"}`,
		`stream $part part up{variant="stream"}`,
		`kafka $group part lab_kafka_consumer_lag_messages`,
	} {
		if !slices.Contains(got, want) {
			t.Errorf("variable queries %v lack %q", got, want)
		}
	}
}

// Every query, and every selector it requires, parses with the PromQL
// parser of the installed Prometheus and runs without error (on no data).
func TestEveryQueryParsesWithTheInstalledPrometheus(t *testing.T) {
	url := promtest.Start(t, []byte("global:\n  scrape_interval: 1s\nscrape_configs: []\n"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	now := time.Now()
	for _, q := range Queries() {
		if _, err := prom.Parse(ctx, url, q.Expr); err != nil {
			t.Errorf("%s panel %d %q: %v\n%s", q.Dashboard, q.PanelID, q.PanelTitle, err, q.Expr)
			continue
		}
		if _, err := prom.QueryRange(ctx, url, q.Expr, now.Add(-time.Minute), now, LiveStep); err != nil {
			t.Errorf("%s panel %d %q: query fails: %v", q.Dashboard, q.PanelID, q.PanelTitle, err)
		}
		for _, s := range q.Requires {
			if _, err := prom.Parse(ctx, url, s); err != nil {
				t.Errorf("%s panel %d: required selector %s: %v", q.Dashboard, q.PanelID, s, err)
			}
		}
	}
	// The check is real: Grafana's own variables are not PromQL.
	if _, err := prom.Parse(ctx, url, `rate(up[$__rate_interval])`); !prom.IsBadQuery(err) {
		t.Errorf("parser accepted an unsubstituted variable: %v", err)
	}
}
