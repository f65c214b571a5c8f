package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/ratingslab/lab/lab/supervisor"
)

func init() { statusSections = append(statusSections, breakerStatus) }

// breakerConfig is the part of a service's /admin/config that `lab status` shows.
type breakerConfig struct {
	Breakers map[string]struct {
		State    string         `json:"state"`
		Settings map[string]any `json:"settings"`
	} `json:"breakers"`
}

// breakerStatus lists every RPC dependency's breaker settings and state.
func breakerStatus(g *globals, _ *supervisor.Client, r *statusReport) []string {
	client := &http.Client{Timeout: time.Second}
	lines := []string{"", "Circuit breakers (RPC variant):"}
	all := map[string]any{}
	for _, p := range r.Parts {
		if p.Variant != "rpc" || p.PID == 0 || p.Health == supervisor.HealthPaused || p.Admin == "" {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Admin+"/admin/config", nil)
		resp, err := client.Do(req)
		cancel()
		if err != nil {
			continue
		}
		var cfg breakerConfig
		_ = json.NewDecoder(resp.Body).Decode(&cfg)
		resp.Body.Close()
		deps := make([]string, 0, len(cfg.Breakers))
		for d := range cfg.Breakers {
			deps = append(deps, d)
		}
		sort.Strings(deps)
		for _, d := range deps {
			b := cfg.Breakers[d]
			s := b.Settings
			all[p.Name+"->"+d] = b
			onOff := "on"
			if s["enabled"] == false {
				onOff = "OFF"
			}
			lines = append(lines, fmt.Sprintf("  %s -> %s: %s, state %s, timeout %v, retries %v, trips after %v consecutive failures or %v of >= %v calls, open for %v, %v half-open probes",
				p.Name, d, onOff, b.State, s["timeout"], s["retries"], s["consecutive_failures"], s["failure_ratio"], s["min_requests"], s["open_timeout"], s["half_open_requests"]))
		}
	}
	if len(lines) == 2 {
		return nil
	}
	r.Extras["breakers"] = all
	return lines
}
