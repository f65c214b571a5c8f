package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ratingslab/lab/dashboards"
	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/lab/prom"
	"github.com/ratingslab/lab/services/lib/servetest"
)

// With the lab up, load running and a fault injected, every panel query of
// every dashboard returns data for each variant from the live Prometheus and
// parses with that Prometheus' own parser; every part's /metrics passes
// promlint and the lab's naming rules.
func TestDashboardsAgainstLivePrometheus(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	t.Parallel()
	_, ok := prom.Find()
	servetest.Need(t, ok, "prometheus", prom.InstallHint)
	l := labtest.Start(t)
	promURL := prom.URL(l.Ports)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	load := exec.CommandContext(ctx, l.Bin, "--dir", string(l.Dir), "--port-base", itoa(l.Ports.Base),
		"load", "--scenario", "steady", "--rate", "40/s", "--duration", "90s", "--quiet", "--metrics-linger", "30s")
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = load.Wait() }()
	out := l.MustRun("chaos", "inject", "latency", "--target", "ratings-rpc->movies-rpc", "--latency", "100ms", "--for", "60s")
	if !strings.Contains(out, "latency") {
		t.Fatalf("chaos inject printed %q", out)
	}
	// Some series need a few scrapes (rates over a window, a DLQ event, lag).
	labtest.Eventually(t, 75*time.Second, "every dashboard query to return data", func() error {
		qctx, qcancel := context.WithTimeout(ctx, 30*time.Second)
		defer qcancel()
		return dashboards.CheckLive(qctx, promURL, []string{"rpc", "stream"})
	})

	for _, p := range l.Status(t) {
		if p.Admin == "" {
			continue // prometheus and grafana are not ours to lint
		}
		problems, err := prom.Lint(ctx, "http://"+p.Admin+"/metrics")
		if err != nil {
			t.Errorf("%s /metrics: %v", p.Name, err)
		}
		for _, pr := range problems {
			t.Errorf("%s: %s: %s", p.Name, pr.Metric, pr.Text)
		}
	}
	problems, err := prom.Lint(ctx, "http://"+l.Ports.Control()+"/metrics")
	if err != nil || len(problems) > 0 {
		t.Errorf("supervisor /metrics: %v %v", err, problems)
	}
}
