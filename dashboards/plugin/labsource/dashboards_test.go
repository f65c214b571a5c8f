package labsource_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/ratingslab/lab/dashboards/plugin/labsource"
	"github.com/ratingslab/lab/lab/journal"
)

// labTargets walks a dashboard's JSON for every query of the lab data
// source: panel targets and annotation targets.
func labTargets(v any, where string, out map[string]json.RawMessage) {
	switch x := v.(type) {
	case map[string]any:
		if ds, ok := x["datasource"].(map[string]any); ok && ds["type"] == labsource.PluginID {
			if _, ok := x["queryType"]; ok {
				b, _ := json.Marshal(x)
				out[where] = b
			}
		}
		for k, c := range x {
			labTargets(c, where+"."+k, out)
		}
	case []any:
		for i, c := range x {
			labTargets(c, where+"["+strconv.Itoa(i)+"]", out)
		}
	}
}

// TestCommittedDashboardsUseOnlyQueriesThePluginAnswers reads every
// committed dashboard (dashboards/json) and runs each lab data source query
// in it — panels and annotations — through the plugin: each must be a query
// type the plugin implements, with a model it accepts.
func TestCommittedDashboardsUseOnlyQueriesThePluginAnswers(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "json", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no committed dashboards: %v", err)
	}
	implemented := []string{}
	for _, qt := range labsource.QueryTypes {
		implemented = append(implemented, qt.Type)
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "journals"), 0o755)
	start := time.Now().Add(-5 * time.Minute).UTC()
	if err := journal.Write(filepath.Join(dir, "journals", "one.json"), journal.Journal{Kind: journal.KindExperiment, Variants: []string{"rpc", "stream"}, Started: start, Ended: start.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	c := plugin(t)
	ds := settings(t, map[string]string{"stateDir": dir})
	total, annotations := 0, 0
	types := map[string]bool{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d any
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatal(err)
		}
		targets := map[string]json.RawMessage{}
		labTargets(d, filepath.Base(f), targets)
		for where, q := range targets {
			var m struct {
				QueryType string `json:"queryType"`
			}
			json.Unmarshal(q, &m)
			total++
			types[m.QueryType] = true
			if strings.Contains(where, ".annotations.") {
				annotations++
			}
			if !slices.Contains(implemented, m.QueryType) {
				t.Errorf("%s: query type %q is not one the plugin implements (%v)", where, m.QueryType, implemented)
				continue
			}
			resp, err := c.QueryData(context.Background(), &backend.QueryDataRequest{
				PluginContext: backend.PluginContext{DataSourceInstanceSettings: ds},
				Queries:       []backend.DataQuery{{RefID: "A", QueryType: m.QueryType, JSON: q, TimeRange: backend.TimeRange{From: start.Add(-time.Hour), To: time.Now()}}},
			})
			if err != nil || resp.Responses["A"].Error != nil {
				t.Errorf("%s: %s: %v %v", where, q, err, resp.Responses["A"].Error)
			}
		}
	}
	// The dashboards do use it: an annotation on each, tables, latency.
	if annotations != len(files) || !types["faults"] || !types["experiments"] || !types["audit"] || !types["recovery"] || !types["latency"] {
		t.Errorf("%d lab queries, %d annotations in %d dashboards, types %v: want a fault annotation on each and experiments, audit, recovery, latency panels", total, annotations, len(files), types)
	}
}
