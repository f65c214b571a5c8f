package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"time"

	"github.com/ratingslab/lab/lab/chaos"
	"github.com/ratingslab/lab/lab/report"
	"github.com/ratingslab/lab/lab/supervisor"
	"github.com/ratingslab/lab/services/lib/breaker"
	"github.com/ratingslab/lab/services/lib/variantname"
)

// runResilience runs an experiment once per entry of its `resilience`,
// back to back on the same lab: the RPC callers' breakers and retries are
// switched at runtime through the control API before each run (no lab
// down/up), the lab's own setting is put back afterwards, and two runs are
// rendered side by side ('lab report --compare').
func runResilience(ctx context.Context, g *globals, p *chaos.Plan, runs []chaos.ResilienceRun, env chaos.Env, c *supervisor.Client) error {
	before, err := currentResilience(ctx, c)
	if err != nil {
		return err
	}
	defer func() {
		// The lab's setting comes back even after Ctrl-C.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := c.SetResilience(rctx, before); err != nil {
			fmt.Fprintf(g.stderr, "could not put the RPC breakers back (%v): run 'lab breakers %s --retries %d'\n", err, *before.Breakers, *before.Retries)
		}
	}()
	var journals []string
	var errs []error
	for i, r := range runs {
		if _, err := c.SetResilience(ctx, r.Request()); err != nil {
			return fmt.Errorf("resilience[%d]: the lab's control API: %w", i, err)
		}
		run := env
		run.Settings = maps.Clone(env.Settings)
		if r.Breakers != "" {
			run.Settings["breakers"] = r.Breakers
		}
		if r.Retries != nil {
			run.Settings["retries"] = strconv.Itoa(*r.Retries)
		}
		run.Name = env.Name + "-" + r.Suffix
		fmt.Fprintf(g.stdout, "\n== Run %d of %d: RPC %s (set at runtime) ==\n", i+1, len(runs), r.Label())
		res, err := runAndReport(ctx, g, p, run)
		if res != nil {
			journals = append(journals, res.JournalPath)
		}
		if err != nil && !errors.Is(err, chaos.ErrNotHeld) {
			return err // the run could not be carried out (or was interrupted)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.Label(), err))
		}
	}
	if len(journals) == 2 {
		out, err := report.CompareFiles(journals[0], journals[1], report.DefaultCompareDir(journals[0], journals[1]))
		if err != nil {
			fmt.Fprintf(g.stderr, "comparison: %v (render it later with 'lab report --compare %s %s')\n", err, journals[0], journals[1])
		} else {
			fmt.Fprintf(g.stdout, "\nComparison (%s vs %s): %s\n            %s\n", runs[0].Label(), runs[1].Label(), out.HTML, out.Markdown)
		}
	}
	return errors.Join(errs...)
}

// currentResilience is the RPC callers' breakers and retries now (read from
// webserver-rpc and ratings-rpc), to put back after the runs.
func currentResilience(ctx context.Context, c *supervisor.Client) (breaker.Resilience, error) {
	ps, err := c.Parts(ctx)
	if err != nil {
		return breaker.Resilience{}, fmt.Errorf("the lab's control API: %w", err)
	}
	client := &http.Client{Timeout: 2 * time.Second}
	for _, p := range ps {
		if p.Variant != variantname.RPC || p.Admin == "" || p.PID == 0 {
			continue
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.Admin+"/admin/resilience", nil)
		resp, err := client.Do(req)
		if err != nil {
			continue
		}
		var deps map[string]struct {
			Settings struct {
				Enabled bool `json:"enabled"`
				Retries int  `json:"retries"`
			} `json:"settings"`
		}
		ok := resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&deps) == nil
		resp.Body.Close()
		for _, d := range deps {
			if !ok {
				break
			}
			on := map[bool]string{true: "on", false: "off"}[d.Settings.Enabled]
			n := d.Settings.Retries
			return breaker.Resilience{Breakers: &on, Retries: &n}, nil
		}
	}
	return breaker.Resilience{}, errors.New("no RPC part answered its breaker settings: is the RPC variant running ('lab status')?")
}
