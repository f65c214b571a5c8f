package labsource_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/ratingslab/lab/dashboards/plugin/labsource"
	"github.com/ratingslab/lab/lab/journal"
)

// stateDir is a lab state dir with one readable journal ("good", an hour
// ago), a journal from a newer lab and a corrupt one.
func stateDir(t *testing.T) (dir string, good journal.Journal) {
	t.Helper()
	dir = t.TempDir()
	jd := filepath.Join(dir, "journals")
	os.MkdirAll(jd, 0o755)
	start := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	good = journal.Journal{Kind: journal.KindExperiment, Title: "written here", Variants: []string{"rpc"},
		Started: start, Ended: start.Add(time.Minute), Verdict: map[string]bool{"rpc": true},
		Faults: []journal.FaultEvent{{ID: "m1", Fault: "kill", Variant: "rpc", Targets: []string{"ratings-rpc"},
			InjectedAt: start.Add(10 * time.Second), HealedAt: start.Add(20 * time.Second)}}}
	if err := journal.Write(filepath.Join(jd, "good.json"), good); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(jd, "future.json"), []byte(`{"version": 3, "kind": "experiment", "variants": ["rpc"]}`), 0o644)
	os.WriteFile(filepath.Join(jd, "corrupt.json"), []byte(`{"version": 2, "kind": `), 0o644)
	return dir, good
}

func errText(r backend.DataResponse) string {
	if r.Error == nil {
		return ""
	}
	return r.Error.Error()
}

func TestBadQueriesGetTheirOwnClearErrors(t *testing.T) {
	dir, good := stateDir(t)
	c := plugin(t)
	ds := settings(t, map[string]string{"stateDir": dir})
	from, to := good.Started.Add(-time.Minute), good.Ended.Add(time.Minute)

	// Several queries in one request: each answers on its own.
	mk := func(ref, typ, js string) backend.DataQuery {
		return backend.DataQuery{RefID: ref, QueryType: typ, JSON: []byte(js), TimeRange: backend.TimeRange{From: from, To: to}}
	}
	resp, err := c.QueryData(context.Background(), &backend.QueryDataRequest{
		PluginContext: backend.PluginContext{DataSourceInstanceSettings: ds},
		Queries: []backend.DataQuery{
			mk("ok", labsource.QueryFaults, `{}`),
			mk("unknown", "verdicts", `{}`),
			mk("none", "", `{}`),
			mk("json", labsource.QueryAudit, `{"run": 7}`),
			mk("variant", labsource.QueryAudit, `{"variant": "rcp"}`),
			mk("missing", labsource.QueryProbes, `{"run": "nope"}`),
			mk("path", labsource.QueryProbes, `{"run": "../../etc/passwd"}`),
			mk("future", labsource.QueryExperiments, `{"run": "future"}`),
			mk("corrupt", labsource.QueryExperiments, `{"run": "corrupt"}`),
			mk("requests", labsource.QueryLatency, `{"requests": "posts"}`),
			mk("requestsElsewhere", labsource.QueryAudit, `{"requests": "reads"}`),
			mk("liveRun", labsource.QueryLive, `{"run": "good"}`),
			mk("live", labsource.QueryLive, `{}`),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]string{
		"unknown":           `unknown queryType "verdicts": want one of faults, experiments, probes, recovery, audit, latency, live`,
		"none":              `no queryType`,
		"json":              `audit query: its JSON does not decode`,
		"variant":           `audit query: variant "rcp": the runs here have rpc`,
		"missing":           `nope.json: no such file`,
		"path":              `a run is a journal's name`,
		"future":            `version 3 is not supported (this lab reads version 2): it was written by a newer lab`,
		"corrupt":           `corrupt JSON`,
		"requests":          `requests "posts": want "all", "reads" or "writes"`,
		"requestsElsewhere": `"requests" applies to the latency query only`,
		"liveRun":           `"run" does not apply`,
		"live":              `no lab is running in ` + dir,
	} {
		r := resp.Responses[ref]
		if !strings.Contains(errText(r), want) || r.Status != backend.StatusBadRequest {
			t.Errorf("%s: status %d, error %q; want 400 and %q", ref, r.Status, errText(r), want)
		}
	}
	// The good query is answered, the unreadable journals named in notices.
	ok := resp.Responses["ok"]
	if ok.Error != nil || len(ok.Frames) != 1 || ok.Frames[0].Rows() != 1 {
		t.Fatalf("faults beside bad queries: %v", ok.Error)
	}
	var notices []string
	for _, n := range ok.Frames[0].Meta.Notices {
		notices = append(notices, n.Text)
	}
	joined := strings.Join(notices, "\n")
	if !strings.Contains(joined, "skipped run future") || !strings.Contains(joined, "newer lab") || !strings.Contains(joined, "skipped run corrupt") {
		t.Errorf("notices %q: want the future and corrupt journals named", notices)
	}
}

func TestNoRunsInTheRangeIsAnEmptyFrameWithANotice(t *testing.T) {
	dir, _ := stateDir(t)
	c := plugin(t)
	ds := settings(t, map[string]string{"stateDir": dir})
	for _, typ := range []string{labsource.QueryFaults, labsource.QueryExperiments, labsource.QueryProbes, labsource.QueryRecovery, labsource.QueryAudit, labsource.QueryLatency} {
		r := query(t, c, ds, typ, nil, time.Now().Add(-10*time.Minute), time.Now())
		f := okFrame(t, typ, r)
		if f.Rows() != 0 || !hasNotice(f, data.NoticeSeverityInfo, "no lab runs between") {
			t.Errorf("%s: %d rows, notices %+v", typ, f.Rows(), f.Meta)
		}
	}
}

func hasNotice(f *data.Frame, sev data.NoticeSeverity, text string) bool {
	if f.Meta == nil {
		return false
	}
	for _, n := range f.Meta.Notices {
		if n.Severity == sev && strings.Contains(n.Text, text) {
			return true
		}
	}
	return false
}

func TestAStateDirThatIsNotThereFailsHealthAndQueries(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-lab")
	c := plugin(t)
	ds := settings(t, map[string]string{"stateDir": missing})
	h, err := c.CheckHealth(context.Background(), &backend.CheckHealthRequest{PluginContext: backend.PluginContext{DataSourceInstanceSettings: ds}})
	if err != nil {
		t.Fatal(err)
	}
	if h.Status != backend.HealthStatusError || !strings.Contains(h.Message, "state dir "+missing+" does not exist") {
		t.Errorf("health %v %q", h.Status, h.Message)
	}
	r := query(t, c, ds, labsource.QueryExperiments, nil, time.Now().Add(-time.Hour), time.Now())
	if !strings.Contains(errText(r), "does not exist") {
		t.Errorf("query: %q", errText(r))
	}
}

func TestHealthListsUnreadableJournalsAndAControlAPIThatDoesNotAnswer(t *testing.T) {
	dir, _ := stateDir(t)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // a port nothing listens on
	c := plugin(t)
	ds := settings(t, map[string]string{"stateDir": dir, "controlUrl": down.URL})
	h, err := c.CheckHealth(context.Background(), &backend.CheckHealthRequest{PluginContext: backend.PluginContext{DataSourceInstanceSettings: ds}})
	if err != nil {
		t.Fatal(err)
	}
	var d labsource.Health
	json.Unmarshal(h.JSONDetails, &d)
	if h.Status != backend.HealthStatusError || d.Running || !strings.Contains(h.Message, "does not answer") {
		t.Errorf("health %v %q: a controlUrl that does not answer must fail it", h.Status, h.Message)
	}
	if len(d.Journals) != 1 || d.Journals[0] != "good" || !strings.Contains(d.Unreadable["future"], "newer lab") || !strings.Contains(d.Unreadable["corrupt"], "corrupt JSON") {
		t.Errorf("details %+v", d)
	}
	if !strings.Contains(h.Message, "1 journals readable, 2 unreadable (corrupt, future") {
		t.Errorf("message %q", h.Message)
	}
	// Without a controlUrl, a lab that is not running is no failure: past
	// runs are still served.
	ds = settings(t, map[string]string{"stateDir": dir})
	h, _ = c.CheckHealth(context.Background(), &backend.CheckHealthRequest{PluginContext: backend.PluginContext{DataSourceInstanceSettings: ds}})
	if h.Status != backend.HealthStatusOk || !strings.Contains(h.Message, "no lab is running") {
		t.Errorf("state dir only: %v %q", h.Status, h.Message)
	}
}

func TestSettingsThatCannotWorkAreRefused(t *testing.T) {
	for js, want := range map[string]string{
		`{}`:                          "set stateDir",
		`{"stateDir": 3}`:             "jsonData",
		`{"controlUrl": "localhost"}`: `controlUrl "localhost": want http://host:port`,
	} {
		if _, err := labsource.ParseSettings([]byte(js)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", js, err, want)
		}
	}
	// Through the plugin protocol the query fails with the same words.
	c := plugin(t)
	_, err := c.QueryData(context.Background(), &backend.QueryDataRequest{
		PluginContext: backend.PluginContext{DataSourceInstanceSettings: settings(t, map[string]string{})},
		Queries:       []backend.DataQuery{{RefID: "A", QueryType: labsource.QueryExperiments}},
	})
	if err == nil || !strings.Contains(err.Error(), "set stateDir") {
		t.Errorf("query with empty settings: %v", err)
	}
}
