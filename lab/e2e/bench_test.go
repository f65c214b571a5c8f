package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/lab/supervisor"
)

// `lab bench post` searches both variants at once, then their bare hops on
// the same ports, reports CPU per acknowledged rating per part, and leaves
// the lab as it found it: every part healthy again on its own port.
// `lab bench profile` saves a part's CPU profile from its admin listener
// (the supervisor's from its control API).
// The bounds are loose on purpose: this checks the tool, not the machine.
func TestBenchPostSearchesBothVariantsAndTheirBareHops(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	l := labtest.Start(t, "--no-prometheus")
	out := l.MustRun("bench", "post", "--start", "20", "--step", "2s", "--cooldown", "0s", "--max-steps", "2", "--max-p99", "10s", "--json")
	var rep struct {
		Variants []struct {
			Variant string             `json:"variant"`
			MaxRate float64            `json:"max_rate"`
			Ceiling float64            `json:"bare_hop_ceiling"`
			CPU     map[string]float64 `json:"cpu_us_per_rating_at_max"`
			HopCPU  map[string]float64 `json:"bare_hop_cpu_us_per_rating"`
		} `json:"variants"`
		Real []struct {
			Variant string `json:"variant"`
			Steps   []struct {
				Acked uint64 `json:"acknowledged"`
				Calls []struct {
					Part       string  `json:"part"`
					Dependency string  `json:"dependency"`
					Calls      uint64  `json:"calls"`
					MeanMs     float64 `json:"mean_ms"`
					Pool       int     `json:"pool"`
				} `json:"calls"`
			} `json:"steps"`
		} `json:"variant_search"`
	}
	i := strings.Index(out, "\n{")
	if i < 0 || json.Unmarshal([]byte(out[i:]), &rep) != nil {
		t.Fatalf("lab bench post --json printed no report:\n%s", out)
	}
	if len(rep.Variants) != 2 {
		t.Fatalf("want rpc and stream, got %+v\n%s", rep.Variants, out)
	}
	own := map[string]string{"rpc": "ratings-rpc", "stream": "broker"}
	hop := map[string]string{"rpc": "hop ratings-rpc", "stream": "hop broker"}
	for _, v := range rep.Variants {
		if v.MaxRate < 20 || v.Ceiling < 20 {
			t.Errorf("%s: max rate %v, bare-hop ceiling %v: want both ≥ 20/s held at p99 < 10s\n%s", v.Variant, v.MaxRate, v.Ceiling, out)
		}
		for _, name := range []string{own[v.Variant], "supervisor", "load generator"} {
			if v.CPU[name] <= 0 {
				t.Errorf("%s: no CPU per rating for %s: %v", v.Variant, name, v.CPU)
			}
		}
		if _, ok := v.HopCPU[hop[v.Variant]]; !ok {
			t.Errorf("%s: no CPU per rating for its %s: %v", v.Variant, hop[v.Variant], v.HopCPU)
		}
	}
	// Each rpc step names the calls its parts made to each other, read
	// from their own metrics: one webserver → ratings call at least per
	// rating acknowledged, through a pool of a known size.
	for _, r := range rep.Real {
		if r.Variant != "rpc" {
			continue
		}
		for n, st := range r.Steps {
			found := false
			for _, c := range st.Calls {
				if c.Part == "webserver-rpc" && c.Dependency == "ratings-rpc" {
					found = true
					if c.Calls < st.Acked || c.Pool < 1 || c.MeanMs <= 0 {
						t.Errorf("rpc step %d: webserver-rpc → ratings-rpc %+v for %d ratings acknowledged", n+1, c, st.Acked)
					}
				}
			}
			if !found {
				t.Errorf("rpc step %d: no webserver-rpc → ratings-rpc calls in %+v", n+1, st.Calls)
			}
		}
	}
	for _, p := range l.Status(t) {
		if p.Health != supervisor.HealthOK {
			t.Errorf("after the bench, %s is %s", p.Name, p.Health)
		}
	}
	// The real webserver is back on its port (a hop answers every path).
	resp, err := http.Get("http://" + l.Ports.WebserverRPC() + "/api/movies/1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("GET /api/movies/1 after the bench: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	prof := filepath.Join(t.TempDir(), "ratings-rpc.pprof")
	start := time.Now()
	l.MustRun("bench", "profile", "ratings-rpc", "--seconds", "1", "--rate", "20", "--out", prof)
	b, err := os.ReadFile(prof)
	if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("profile %s: %v, %d bytes: want a gzipped pprof profile", prof, err, len(b))
	}
	// The supervisor (the edge proxies) serves pprof on its control API.
	sup := filepath.Join(t.TempDir(), "supervisor.pprof")
	l.MustRun("bench", "profile", "supervisor", "--seconds", "1", "--rate", "20", "--out", sup)
	if b, err := os.ReadFile(sup); err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("profile %s: %v, %d bytes: want a gzipped pprof profile", sup, err, len(b))
	}
	if _, err := l.Run("bench", "profile", "no-such-part"); err == nil {
		t.Error("profiling a part that does not exist: want an error")
	}
	t.Logf("profile in %v", time.Since(start))
}
