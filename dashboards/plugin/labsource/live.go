package labsource

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/ratingslab/lab/lab/faults"
	"github.com/ratingslab/lab/lab/kv"
	"github.com/ratingslab/lab/lab/supervisor"
)

// controlTimeout bounds every call to the lab's control API: a stopped or
// paused supervisor must not hang a dashboard.
const controlTimeout = 5 * time.Second

// control returns a client for the lab's control API: the configured URL,
// or the one a running lab wrote into <stateDir>/lab.json.
func (in *Instance) control() (*supervisor.Client, error) {
	base := in.settings.ControlURL
	if base == "" {
		if in.store == nil {
			return nil, errors.New("no controlUrl and no stateDir is set")
		}
		st, err := supervisor.ReadState(in.store.dir)
		if errors.Is(err, supervisor.ErrNoState) {
			return nil, fmt.Errorf("no lab is running in %s (no lab.json); start one with `lab up --dir %s`, or set controlUrl", in.store.dir, in.store.dir)
		}
		if err != nil {
			return nil, err
		}
		base = "http://" + st.Control
	}
	return &supervisor.Client{Base: base, HTTP: &http.Client{Timeout: controlTimeout}}, nil
}

// liveFaults are the running lab's active and recent faults; none (and an
// error) when no lab answers.
func (in *Instance) liveFaults(ctx context.Context) ([]faults.Fault, error) {
	c, err := in.control()
	if err != nil {
		return nil, err
	}
	l, err := faults.NewClient(c).List(ctx)
	if err != nil {
		return nil, fmt.Errorf("lab control API %s: %w", c.Base, err)
	}
	return append(l.Active, l.History...), nil
}

// liveQuery answers with two frames: the parts and their health, and the
// faults in force (the lab's and those set around it).
func liveQuery(ctx context.Context, in *Instance, q backend.DataQuery, m Model) backend.DataResponse {
	if m.Run != "" {
		return badQuery("live query: \"run\" does not apply: live shows the running lab")
	}
	c, err := in.control()
	if err != nil {
		return badQuery("live query: %v", err)
	}
	ps, err := c.Parts(ctx)
	if err != nil {
		return backend.ErrDataResponse(backend.StatusBadGateway, fmt.Sprintf("live query: lab control API %s does not answer: %v", c.Base, err))
	}
	l, err := faults.NewClient(c).List(ctx)
	if err != nil {
		return backend.ErrDataResponse(backend.StatusBadGateway, fmt.Sprintf("live query: lab control API %s: faults: %v", c.Base, err))
	}
	parts := table("parts",
		field("part", []string{}, ""),
		field("variant", []string{}, ""),
		field("health", []string{}, ""),
		field("up", []bool{}, ""),
		field("pid", []int64{}, ""),
		field("addr", []string{}, ""),
		field("started", []*time.Time{}, ""),
		field("restarts", []int64{}, unitCount),
		field("error", []string{}, ""),
		field("warning", []string{}, ""),
	)
	for _, p := range ps {
		if !m.wants(p.Variant) {
			continue
		}
		var started *time.Time
		if !p.Started.IsZero() {
			s := p.Started
			started = &s
		}
		parts.AppendRow(p.Name, p.Variant, string(p.Health), p.Health == supervisor.HealthOK, int64(p.PID), p.Addr, started, int64(p.Restarts), p.Error, p.Warning)
	}
	active := table("active faults",
		field("time", []*time.Time{}, ""),
		field("heals_at", []*time.Time{}, ""),
		field("id", []string{}, ""),
		field("fault", []string{}, ""),
		field("variant", []string{}, ""),
		field("target", []string{}, ""),
		field("params", []string{}, ""),
		field("owner", []string{}, ""),
		field("set by", []string{}, ""),
	)
	for _, f := range l.Active {
		if !m.wants(f.Variant) {
			continue
		}
		var heals *time.Time
		if !f.HealsAt.IsZero() {
			h := f.HealsAt
			heals = &h
		}
		injected := f.InjectedAt
		active.AppendRow(&injected, heals, f.ID, f.Fault, f.Variant, f.Target, kv.Join(f.Params), f.Owner, "lab")
	}
	var notices []data.Notice
	for _, e := range l.External {
		// Set around the lab: no injection time is known.
		active.AppendRow((*time.Time)(nil), (*time.Time)(nil), "", e.Kind, "", e.Target, e.Detail, "", e.Via)
		notices = append(notices, data.Notice{Severity: data.NoticeSeverityWarning, Text: e.String()})
	}
	return answer(notices, parts, active)
}
