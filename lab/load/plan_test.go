package load

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ratingslab/lab/loadtests"
)

func baseOptions() Options {
	return Options{
		Scenario:     "steady",
		ScenarioDirs: []fs.FS{loadtests.Scenarios()},
		Variants:     []string{"rpc", "stream"},
		Known:        map[string]string{"rpc": "http://127.0.0.1:7710", "stream": "http://127.0.0.1:7720"},
		Now:          time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

func TestPlanTurnsOptionsIntoARun(t *testing.T) {
	o := baseOptions()
	seed := uint32(9)
	o.Rate, o.Duration, o.Seed = "500/s", 30*time.Second, &seed
	p, err := NewPlan(o)
	if err != nil {
		t.Fatal(err)
	}
	if p.Scenario.Arrival.ExpectedRequests() != 15000 || p.Scenario.Seed != 9 || len(p.Targets) != 2 || p.Targets[1].BaseURL != "http://127.0.0.1:7720" {
		t.Errorf("plan: %+v %+v", p.Scenario.Arrival, p.Targets)
	}
	if !strings.HasPrefix(p.RunID, "steady-20260102T030405Z-") {
		t.Errorf("run id %q: want scenario, UTC time and a random suffix", p.RunID)
	}
	if q, _ := NewPlan(baseOptions()); q.RunID == p.RunID {
		t.Error("two runs in the same second must still get different run ids")
	}
}

func TestBadOptionsAreRefusedBeforeAnyRequest(t *testing.T) {
	dir := t.TempDir()
	badFile := filepath.Join(dir, "ratings.dat")
	os.WriteFile(badFile, []byte("1::2::5\n1::2::99\n"), 0o644)
	cases := map[string]struct {
		change func(*Options)
		want   string
	}{
		"zero rate":        {func(o *Options) { o.Rate = "0" }, "--rate"},
		"negative rate":    {func(o *Options) { o.Rate = "-100/s" }, "--rate"},
		"unknown variant":  {func(o *Options) { o.Variants = []string{"rpc", "grpc"} }, `unknown variant "grpc"`},
		"no variant":       {func(o *Options) { o.Variants = nil }, "--variants"},
		"twice":            {func(o *Options) { o.Variants = []string{"rpc", "rpc"} }, "twice"},
		"unknown scenario": {func(o *Options) { o.Scenario = "soak" }, "unknown scenario"},
		"missing file":     {func(o *Options) { o.Scenario = "./nope.json" }, "nope.json"},
		"too long":         {func(o *Options) { o.Duration = 2 * time.Hour }, "--force"},
		"negative dur":     {func(o *Options) { o.Duration = -time.Second }, "--duration"},
		"zero dur given":   {func(o *Options) { o.Duration, o.DurationSet = 0, true }, "--duration 0s: must be > 0"},
		"target not loaded": {func(o *Options) {
			o.Known["rcp"] = "http://127.0.0.1:9"
			o.Targeted = []string{"rcp"}
		}, "--target rcp=http://127.0.0.1:9: rcp is not a variant of the lab"},
		"bad from line": {func(o *Options) { o.From = badFile }, "line 2: rating"},
		"missing from":  {func(o *Options) { o.From = filepath.Join(dir, "none.dat") }, "--from"},
		"bad run id":    {func(o *Options) { o.RunID = "a b" }, "--run-id"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			o := baseOptions()
			c.change(&o)
			_, err := NewPlan(o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("want an error containing %q, got %v", c.want, err)
			}
		})
	}
	o := baseOptions()
	o.Duration, o.Force = 2*time.Hour, true
	if _, err := NewPlan(o); err != nil {
		t.Errorf("--force allows two hours: %v", err)
	}
	o = baseOptions()
	o.From, o.SkipBad = badFile, true
	p, err := NewPlan(o)
	if err != nil || len(p.Skipped) != 1 || p.Skipped[0].Line != 2 || p.SourceName != "file:"+badFile {
		t.Errorf("--skip-bad: %+v, %v", p, err)
	}
}
