package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/ratingslab/lab/lab/supervisor"
)

// partHealth is the part of a service's /healthz that `lab status` shows:
// its bulkhead limits and, for RPC callers, each dependency's breakers
// (per operation), retries and connection pool.
type partHealth struct {
	Limits   map[string]any `json:"limits"`
	Breakers map[string]struct {
		State    string            `json:"state"`
		States   map[string]string `json:"states"`
		Settings map[string]any    `json:"settings"`
		Pool     map[string]any    `json:"pool"`
	} `json:"breakers"`
}

// breakerStatus lists every part's bulkhead limits, then every RPC
// dependency's breakers, retries and pool.
func breakerStatus(g *globals, _ *supervisor.Client, r *statusReport) []string {
	client := &http.Client{Timeout: time.Second}
	limits := map[string][]string{} // "max 200 in flight, ..." → parts
	var breakers []string
	all := map[string]any{}
	allLimits := map[string]any{}
	for _, p := range r.Parts {
		if p.PID == 0 || p.Health == supervisor.HealthPaused || p.Admin == "" {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Admin+"/healthz", nil)
		resp, err := client.Do(req)
		if err != nil {
			cancel()
			continue
		}
		var h partHealth
		_ = json.NewDecoder(resp.Body).Decode(&h)
		resp.Body.Close()
		cancel()
		if l := h.Limits; l != nil {
			allLimits[p.Name] = l
			key := fmt.Sprintf("max %v in flight, queue %v, queue timeout %v", l["max_inflight"], l["max_queue"], l["queue_timeout"])
			limits[key] = append(limits[key], p.Name)
		}
		deps := make([]string, 0, len(h.Breakers))
		for d := range h.Breakers {
			deps = append(deps, d)
		}
		sort.Strings(deps)
		for _, d := range deps {
			b := h.Breakers[d]
			s := b.Settings
			all[p.Name+"->"+d] = b
			onOff := "on"
			if s["enabled"] == false {
				onOff = "OFF"
			}
			state := b.State
			if len(b.States) > 0 {
				state = fmt.Sprintf("reads %s, writes %s", b.States["read"], b.States["write"])
			}
			pool := ""
			if b.Pool != nil {
				pool = fmt.Sprintf("; pool %v connections (%v in use), %v may wait (%v waiting)", b.Pool["max_conns"], b.Pool["in_use"], b.Pool["max_pending"], b.Pool["waiting"])
			}
			breakers = append(breakers, fmt.Sprintf("  %s -> %s: breakers %s (%s), timeout %v, retries %v, trip after %v consecutive failures or %v of >= %v calls, open %v, %v half-open probes%s",
				p.Name, d, onOff, state, s["timeout"], s["retries"], s["consecutive_failures"], s["failure_ratio"], s["min_requests"], s["open_timeout"], s["half_open_requests"], pool))
		}
	}
	var lines []string
	if len(limits) > 0 {
		lines = append(lines, "", "Bulkheads (each part's public listener; --max-inflight, --max-queue, --queue-timeout):")
		keys := make([]string, 0, len(limits))
		for k := range limits {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			lines = append(lines, fmt.Sprintf("  %s: %s", k, strings.Join(limits[k], ", ")))
		}
		r.Extras["limits"] = allLimits
	}
	if len(breakers) > 0 {
		lines = append(lines, "", "Circuit breakers, retries and connection pools (RPC variant; switch at runtime: lab breakers on|off):")
		lines = append(lines, breakers...)
		r.Extras["breakers"] = all
	}
	return lines
}
