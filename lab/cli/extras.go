package cli

import (
	"fmt"
	"os"

	"github.com/ratingslab/lab/dashboards"
	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/lab/prom"
	"github.com/ratingslab/lab/lab/supervisor"
)

// optionalExtras returns the optional processes (Prometheus, Grafana) to run
// beside the parts when their binaries are installed, and notes to print for
// those that are not.
func optionalExtras(g *globals, opts parts.Options, disabled bool) ([]supervisor.Extra, []string, error) {
	if disabled {
		return nil, []string{"Prometheus and Grafana were not started (--no-prometheus)."}, nil
	}
	var extras []supervisor.Extra
	var notes []string
	dir, ports := g.dir(), g.ports()
	promURL := prom.URL(ports)
	if bin, ok := prom.Find(); ok {
		var targets []prom.Target // the lab's own targets are added by prom.Config
		for _, in := range supervisor.Instances(opts) {
			if in.Part.Admin == nil {
				continue
			}
			// Every part's /metrics is on its loopback admin listener.
			targets = append(targets, prom.Target{Part: in.Name, Job: in.Part.Name, Variant: string(in.Part.Variant), Addr: in.Part.AdminAddr(opts, ports, in.Index)})
		}
		cfg, err := prom.WriteConfig(dir, ports, targets)
		if err != nil {
			return nil, nil, fmt.Errorf("prometheus config: %w", err)
		}
		extras = append(extras, supervisor.Extra{Name: "prometheus", Variant: "lab", Path: bin, Addr: ports.Prometheus(),
			Args: prom.Args(cfg, dir, ports), Env: prom.Env(os.Getenv), HealthURL: promURL + "/-/ready"})
	} else {
		notes = append(notes, prom.InstallHint)
	}
	if gr, ok := prom.FindGrafana(); ok {
		provisioning, jsonDir, err := dashboards.Install(dir.Path("grafana"))
		if err != nil {
			return nil, nil, err
		}
		extras = append(extras, supervisor.Extra{Name: "grafana", Variant: "lab", Path: gr.Binary, Addr: ports.Grafana(),
			Args: gr.Args(), Env: prom.GrafanaEnv(dir, ports, provisioning, jsonDir), HealthURL: prom.GrafanaURL(ports) + "/api/health"})
	} else {
		notes = append(notes, prom.GrafanaInstallHint)
	}
	return extras, notes, nil
}
