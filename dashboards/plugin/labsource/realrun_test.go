package labsource_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/experimental/datasourcetest"

	"github.com/ratingslab/lab/dashboards/plugin/labsource"
	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/lab/kv"
	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/lab/latency"
	"github.com/ratingslab/lab/lab/load/ledger"
	"github.com/ratingslab/lab/services/lib/duration"
)

var (
	serveOnce sync.Once
	served    datasourcetest.TestPlugin
	serveErr  error
	dsIDs     atomic.Int64
)

// plugin serves labsource over a real gRPC plugin server on a loopback
// port, as Grafana talks to it, and returns a client for it. The SDK
// registers its metrics globally, so one server serves the whole test
// process; each test's settings get their own data source id (instance).
func plugin(t *testing.T) *datasourcetest.TestPluginClient {
	t.Helper()
	serveOnce.Do(func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			serveErr = err
			return
		}
		addr := ln.Addr().String()
		ln.Close()
		served, serveErr = datasourcetest.Manage(labsource.NewInstance, datasourcetest.ManageOpts{Address: addr})
	})
	if serveErr != nil {
		t.Fatal(serveErr)
	}
	return served.Client
}

// settings are the data source settings Grafana passes for jsonData.
func settings(t *testing.T, jsonData any) *backend.DataSourceInstanceSettings {
	t.Helper()
	b, err := json.Marshal(jsonData)
	if err != nil {
		t.Fatal(err)
	}
	id := dsIDs.Add(1)
	return &backend.DataSourceInstanceSettings{ID: id, UID: fmt.Sprintf("lab-journals-%d", id), Name: "Ratings lab", JSONData: b, Updated: time.Now()}
}

// query runs one query and returns its response.
func query(t *testing.T, c *datasourcetest.TestPluginClient, ds *backend.DataSourceInstanceSettings, queryType string, model map[string]any, from, to time.Time) backend.DataResponse {
	t.Helper()
	b, _ := json.Marshal(model)
	resp, err := c.QueryData(context.Background(), &backend.QueryDataRequest{
		PluginContext: backend.PluginContext{PluginID: labsource.PluginID, DataSourceInstanceSettings: ds},
		Queries:       []backend.DataQuery{{RefID: "A", QueryType: queryType, JSON: b, TimeRange: backend.TimeRange{From: from, To: to}}},
	})
	if err != nil {
		t.Fatalf("%s query: %v", queryType, err)
	}
	return resp.Responses["A"]
}

func resource(t *testing.T, c *datasourcetest.TestPluginClient, ds *backend.DataSourceInstanceSettings, path string) (int, []byte) {
	t.Helper()
	var got *backend.CallResourceResponse
	u, _, _ := strings.Cut(path, "?")
	err := c.CallResource(context.Background(), &backend.CallResourceRequest{
		PluginContext: backend.PluginContext{PluginID: labsource.PluginID, DataSourceInstanceSettings: ds},
		Path:          u, Method: "GET", URL: path,
	}, backend.CallResourceResponseSenderFunc(func(r *backend.CallResourceResponse) error {
		if got == nil {
			got = r
		} else {
			got.Body = append(got.Body, r.Body...)
		}
		return nil
	}))
	if err != nil || got == nil {
		t.Fatalf("resource %s: %v", path, err)
	}
	return got.Status, got.Body
}

// column returns a frame's field by name.
func column(t *testing.T, f *data.Frame, name string) *data.Field {
	t.Helper()
	field, i := f.FieldByName(name)
	if i < 0 {
		t.Fatalf("frame %q has no field %q", f.Name, name)
	}
	return field
}

func okFrame(t *testing.T, what string, r backend.DataResponse) *data.Frame {
	t.Helper()
	if r.Error != nil {
		t.Fatalf("%s: %v", what, r.Error)
	}
	if len(r.Frames) == 0 {
		t.Fatalf("%s: no frame", what)
	}
	return r.Frames[0]
}

func secondsOf(d *duration.Duration) *float64 {
	if d == nil {
		return nil
	}
	s := d.D().Seconds()
	return &s
}

func samePtr(a, b *float64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// The experiment the plugin reads: two faults of known place and size, one
// per variant, under a short ratings-heavy load.
const scenario = `{
  "name": "plugin-scenario",
  "description": "Short load for the data source test.",
  "seed": 5,
  "arrival": { "executor": "constant-arrival-rate", "rate": 25, "duration": "14s" },
  "mix": { "rating": 0.7, "movie": 0.3 },
  "movies": { "min_id": 1, "max_id": 40, "unknown_fraction": 0.05 },
  "request_timeout": "10s"
}`

const experiment = `title: Data source test — a latency per variant
description: Journals for the Grafana data source test.
variants: [rpc, stream]
load:
  scenario: plugin-scenario.json
steady_state:
  warmup: 2s
  recovery: 3s
  probes:
    - probe: success_rate
      min: 0
      why: the test reads the data source's frames, not the variants' verdict
    - probe: lost_writes
    - probe: audit
method:
  - fault: latency
    target: "webserver-rpc->ratings-rpc"
    params: {latency: 150ms}
    at: 3s
    for: 4s
  - fault: latency
    target: "webserver-stream->broker"
    params: {latency: 150ms}
    at: 3s
    for: 4s
drain: 20s
`

// TestTheDataSourceReadsARealChaosRun runs a real `lab chaos run` and
// checks every query type, the health check and the resources against the
// journal and ledger it wrote, through the real gRPC plugin protocol.
func TestTheDataSourceReadsARealChaosRun(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	l := labtest.Start(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "plugin-scenario.json"), []byte(scenario), 0o644)
	file := filepath.Join(dir, "plugin.yaml")
	os.WriteFile(file, []byte(experiment), 0o644)
	out, err := l.Run("chaos", "run", file, "--quiet")
	m := regexp.MustCompile(`Journal: (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("lab chaos run: no journal (%v):\n%s", err, out)
	}
	j, err := journal.Read(m[1])
	if err != nil {
		t.Fatal(err)
	}
	runName := strings.TrimSuffix(filepath.Base(m[1]), ".json")
	led, err := ledger.Read(j.Ledger)
	if err != nil {
		t.Fatal(err)
	}
	if len(j.Faults) < 2 || len(j.Audit) == 0 || len(j.Recovery) == 0 || len(j.Phases) == 0 {
		t.Fatalf("the run's journal lacks what the test checks: %d faults, %d audits, %d recoveries, %d phases", len(j.Faults), len(j.Audit), len(j.Recovery), len(j.Phases))
	}

	injected := 0
	for _, ev := range j.Faults {
		if !ev.InjectedAt.IsZero() {
			injected++
		}
	}
	c := plugin(t)
	ds := settings(t, map[string]string{"stateDir": string(l.Dir)})
	from, to := j.Started.Add(-time.Minute), j.Ended.Add(time.Minute)

	t.Run("health names the journal and the running lab", func(t *testing.T) {
		h, err := c.CheckHealth(context.Background(), &backend.CheckHealthRequest{PluginContext: backend.PluginContext{DataSourceInstanceSettings: ds}})
		if err != nil {
			t.Fatal(err)
		}
		var d labsource.Health
		json.Unmarshal(h.JSONDetails, &d)
		parts := l.Status(t)
		if h.Status != backend.HealthStatusOk || !d.Running || d.Parts != len(parts) || len(d.Journals) != 1 || d.Journals[0] != runName {
			t.Errorf("health %v %q, details %+v; want OK, running with %d parts, journal %s", h.Status, h.Message, d, len(parts), runName)
		}
		if !strings.Contains(h.Message, "1 journals readable") || !strings.Contains(h.Message, "lab running at http://"+l.Ports.Control()) {
			t.Errorf("health message %q", h.Message)
		}
	})

	t.Run("faults: one row per fault window of the journal", func(t *testing.T) {
		r := query(t, c, ds, labsource.QueryFaults, nil, from, to)
		f := okFrame(t, "faults", r)
		if f.Rows() != injected {
			t.Fatalf("%d rows, want the journal's %d injected faults (the injector's history of the run is not repeated)", f.Rows(), injected)
		}
		// A fault that was never injected (no equivalent in a variant) has
		// no window: a notice says so.
		if notices := len(f.Meta.Notices); notices != len(j.Faults)-injected {
			t.Errorf("%d notices, want one per fault never injected (%d): %+v", notices, len(j.Faults)-injected, f.Meta.Notices)
		}
		byID := map[string]int{}
		for i := 0; i < f.Rows(); i++ {
			byID[column(t, f, "id").At(i).(string)] = i
		}
		for _, ev := range j.Faults {
			if ev.InjectedAt.IsZero() {
				continue
			}
			i, ok := byID[ev.ID]
			if !ok {
				t.Fatalf("fault %s missing", ev.ID)
			}
			start, end := column(t, f, "time").At(i).(time.Time), column(t, f, "timeEnd").At(i).(time.Time)
			if !start.Equal(ev.InjectedAt) || !end.Equal(ev.HealedAt) {
				t.Errorf("fault %s window %v–%v, journal %v–%v", ev.ID, start, end, ev.InjectedAt, ev.HealedAt)
			}
			if column(t, f, "fault").At(i) != ev.Fault || column(t, f, "variant").At(i) != ev.Variant ||
				column(t, f, "targets").At(i) != strings.Join(ev.Targets, ", ") || column(t, f, "params").At(i) != kv.Join(ev.Params) || !strings.Contains(kv.Join(ev.Params), "latency=150ms") ||
				column(t, f, "run").At(i) != runName || column(t, f, "source").At(i) != "journal" {
				t.Errorf("fault %s row %v, journal %+v", ev.ID, f.RowCopy(i), ev)
			}
		}
		// The same query for one variant keeps that variant's fault only.
		f = okFrame(t, "faults rpc", query(t, c, ds, labsource.QueryFaults, map[string]any{"variant": "rpc"}, from, to))
		rpc := 0
		for _, ev := range j.Faults {
			if ev.Variant == "rpc" && !ev.InjectedAt.IsZero() {
				rpc++
			}
		}
		if f.Rows() != rpc || column(t, f, "variant").At(0) != "rpc" {
			t.Errorf("variant rpc: %d rows, journal %d", f.Rows(), rpc)
		}
	})

	t.Run("experiments: the run with its verdict per variant", func(t *testing.T) {
		f := okFrame(t, "experiments", query(t, c, ds, labsource.QueryExperiments, nil, from, to))
		if f.Rows() != 1 || column(t, f, "run").At(0) != runName || column(t, f, "title").At(0) != j.Title || !column(t, f, "time").At(0).(time.Time).Equal(j.Started) {
			t.Fatalf("rows %d, first %v; want run %s %q", f.Rows(), f.RowCopy(0), runName, j.Title)
		}
		all := true
		for _, v := range j.Variants {
			got := column(t, f, "passed "+v).At(0).(*bool)
			if got == nil || *got != j.Verdict[v] {
				t.Errorf("passed %s = %v, journal %v", v, got, j.Verdict[v])
			}
			all = all && j.Verdict[v]
		}
		if column(t, f, "passed").At(0) != all {
			t.Errorf("passed %v, want %v", column(t, f, "passed").At(0), all)
		}
		if got, want := column(t, f, "notes").At(0), strings.Join(j.ControlNotes(), " "); got != want {
			t.Errorf("notes %q, want the journal's %q", got, want)
		}
	})

	t.Run("probes: every probe of every phase", func(t *testing.T) {
		f := okFrame(t, "probes", query(t, c, ds, labsource.QueryProbes, map[string]any{"run": runName}, time.Time{}, time.Time{}))
		i := 0
		for _, ph := range j.Phases {
			for _, p := range ph.Probes {
				if i >= f.Rows() {
					t.Fatalf("only %d rows", f.Rows())
				}
				if column(t, f, "variant").At(i) != ph.Variant || column(t, f, "phase").At(i) != ph.Name || column(t, f, "probe").At(i) != p.Name ||
					column(t, f, "tolerance").At(i) != p.Tolerance || column(t, f, "observed").At(i) != p.Observed || column(t, f, "ok").At(i) != p.OK {
					t.Errorf("row %d %v, journal %s/%s %+v", i, f.RowCopy(i), ph.Variant, ph.Name, p)
				}
				i++
			}
		}
		if i != f.Rows() {
			t.Errorf("%d rows, journal %d probes", f.Rows(), i)
		}
	})

	t.Run("recovery: the journal's metrics, in seconds", func(t *testing.T) {
		f := okFrame(t, "recovery", query(t, c, ds, labsource.QueryRecovery, nil, from, to))
		if f.Rows() != len(j.Recovery) {
			t.Fatalf("%d rows, journal %d", f.Rows(), len(j.Recovery))
		}
		if u := column(t, f, "time_to_detect").Config.Unit; u != "s" {
			t.Errorf("time_to_detect unit %q", u)
		}
		for i, r := range j.Recovery {
			if column(t, f, "fault_id").At(i) != r.FaultID || column(t, f, "variant").At(i) != r.Variant ||
				!samePtr(column(t, f, "time_to_detect").At(i).(*float64), secondsOf(r.TimeToDetect)) ||
				!samePtr(column(t, f, "success_recovered").At(i).(*float64), secondsOf(r.SuccessRecovered)) ||
				!samePtr(column(t, f, "p99_recovered").At(i).(*float64), secondsOf(r.P99Recovered)) ||
				column(t, f, "failed_during_fault").At(i) != r.FailedDuringFault || column(t, f, "error_budget_burned").At(i) != r.ErrorBudgetBurned ||
				column(t, f, "touched").At(i) != strings.Join(r.Touched, ", ") {
				t.Errorf("row %d %v, journal %+v", i, f.RowCopy(i), r)
			}
		}
	})

	t.Run("audit: the journal's tallies and findings", func(t *testing.T) {
		f := okFrame(t, "audit", query(t, c, ds, labsource.QueryAudit, nil, from, to))
		if f.Rows() != len(j.Audit) {
			t.Fatalf("%d rows, journal %d", f.Rows(), len(j.Audit))
		}
		for i, a := range j.Audit {
			if column(t, f, "variant").At(i) != a.Variant || column(t, f, "source").At(i) != a.Source || column(t, f, "ok").At(i) != a.OK ||
				column(t, f, "acknowledged").At(i) != a.Acknowledged || column(t, f, "ambiguous").At(i) != a.Ambiguous ||
				column(t, f, "lost").At(i) != a.Lost || column(t, f, "duplicates").At(i) != a.Duplicates || column(t, f, "phantoms").At(i) != a.Phantoms {
				t.Errorf("row %d %v, journal %+v", i, f.RowCopy(i), a)
			}
		}
	})

	t.Run("latency: exact per-second percentiles from the ledger", func(t *testing.T) {
		r := query(t, c, ds, labsource.QueryLatency, nil, from, to)
		if r.Error != nil {
			t.Fatal(r.Error)
		}
		if len(r.Frames) != len(j.Variants) {
			t.Fatalf("%d frames, want one per variant %v", len(r.Frames), j.Variants)
		}
		for _, f := range r.Frames {
			v := f.Fields[1].Labels["variant"]
			// The test's own reading of the ledger: latencies by the second
			// in which each request ended.
			bySecond := map[int64][]time.Duration{}
			n := 0
			for _, e := range append(append([]ledger.Entry(nil), led.Entries...), led.Reads...) {
				if e.Variant == v {
					bySecond[e.SentAt.Add(e.LatencyNs).Unix()] = append(bySecond[e.SentAt.Add(e.LatencyNs).Unix()], e.LatencyNs)
					n++
				}
			}
			if f.Rows() != len(bySecond) {
				t.Errorf("%s: %d seconds, the ledger has %d", v, f.Rows(), len(bySecond))
			}
			total := int64(0)
			for i := 0; i < f.Rows(); i++ {
				sec := column(t, f, "time").At(i).(time.Time).Unix() - 1
				ds := bySecond[sec]
				count := column(t, f, "requests").At(i).(int64)
				total += count
				if count != int64(len(ds)) {
					t.Errorf("%s second %d: %d requests, ledger %d", v, sec, count, len(ds))
				}
				for _, p := range []struct {
					name string
					q    float64
				}{{"p50", 0.5}, {"p99", 0.99}, {"max", 1}} {
					if got, want := column(t, f, p.name).At(i).(float64), latency.Exact(ds, p.q).Seconds(); got != want {
						t.Errorf("%s second %d %s = %v, ledger %v", v, sec, p.name, got, want)
					}
				}
			}
			cw, _ := j.FindClient(v, journal.WindowRun)
			if total != int64(n) || uint64(total) != cw.All.Answered {
				t.Errorf("%s: %d requests in the frame, ledger %d, journal's run window %d", v, total, n, cw.All.Answered)
			}
		}
		// Writes only: the ledger's post lines.
		r = query(t, c, ds, labsource.QueryLatency, map[string]any{"requests": "writes", "variant": "rpc"}, from, to)
		if r.Error != nil || len(r.Frames) != 1 {
			t.Fatalf("writes: %v, %d frames", r.Error, len(r.Frames))
		}
		total := int64(0)
		for i := 0; i < r.Frames[0].Rows(); i++ {
			total += column(t, r.Frames[0], "requests").At(i).(int64)
		}
		posts := 0
		for _, e := range led.Entries {
			if e.Variant == "rpc" {
				posts++
			}
		}
		if total != int64(posts) {
			t.Errorf("rpc writes: %d in the frame, %d post lines in the ledger", total, posts)
		}
	})

	t.Run("live: parts, and a fault injected by hand", func(t *testing.T) {
		f := okFrame(t, "live", query(t, c, ds, labsource.QueryLive, nil, from, to))
		parts := l.Status(t)
		if f.Rows() != len(parts) {
			t.Errorf("%d parts, lab status %d", f.Rows(), len(parts))
		}
		out := l.MustRun("chaos", "inject", "latency", "--target", "webserver-rpc->ratings-rpc", "--latency", "50ms", "--for", "2m")
		id := strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
		defer l.Run("chaos", "heal", id)
		now := time.Now()
		r := query(t, c, ds, labsource.QueryLive, nil, now.Add(-time.Hour), now.Add(time.Minute))
		if r.Error != nil || len(r.Frames) != 2 {
			t.Fatalf("live: %v, %d frames", r.Error, len(r.Frames))
		}
		active := r.Frames[1]
		if active.Rows() != 1 || column(t, active, "id").At(0) != id || column(t, active, "fault").At(0) != "latency" {
			t.Errorf("active faults %d rows, want %s", active.Rows(), id)
		}
		// The faults query shows it too (live, active), beside the run's.
		fq := okFrame(t, "faults", query(t, c, ds, labsource.QueryFaults, nil, from, now.Add(time.Minute)))
		found := false
		for i := 0; i < fq.Rows(); i++ {
			if column(t, fq, "id").At(i) == id {
				found = column(t, fq, "source").At(i) == "live" && column(t, fq, "active").At(i) == true
			}
		}
		if !found || fq.Rows() != injected+1 {
			t.Errorf("faults query: %d rows, the live fault %s found=%v", fq.Rows(), id, found)
		}
	})

	t.Run("resources: runs, variants, faults", func(t *testing.T) {
		code, body := resource(t, c, ds, "runs")
		var runs []labsource.RunInfo
		if err := json.Unmarshal(body, &runs); code != 200 || err != nil || len(runs) != 1 || runs[0].Name != runName || runs[0].Faults != len(j.Faults) {
			t.Errorf("runs: %d %s", code, body)
		}
		code, body = resource(t, c, ds, "variants")
		var vs []string
		json.Unmarshal(body, &vs)
		want := append([]string(nil), j.Variants...)
		sort.Strings(want)
		if code != 200 || strings.Join(vs, ",") != strings.Join(want, ",") {
			t.Errorf("variants: %d %s, want %v", code, body, want)
		}
		code, body = resource(t, c, ds, "faults?run="+runName)
		var fs []labsource.FaultWindow
		if err := json.Unmarshal(body, &fs); code != 200 || err != nil || len(fs) != len(j.Faults) || fs[0].Run != runName {
			t.Errorf("faults: %d %s", code, body)
		}
		if code, body = resource(t, c, ds, "faults?run=nope"); code != 400 || !strings.Contains(string(body), "nope.json: no such file") {
			t.Errorf("faults of a missing run: %d %s", code, body)
		}
		if code, body = resource(t, c, ds, "nothing"); code != 404 {
			t.Errorf("unknown resource: %d %s", code, body)
		}
	})
}

func TestMain(m *testing.M) {
	code := labtest.Main(m) // removes the lab binaries it built
	if served.Server != nil || served.Client != nil {
		served.Shutdown()
	}
	os.Exit(code)
}
