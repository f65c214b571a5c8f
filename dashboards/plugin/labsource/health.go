package labsource

import (
	"context"
	"fmt"
	"strings"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/ratingslab/lab/lab/supervisor"
)

// Health is CheckHealth's JSONDetails: what the data source can read.
type Health struct {
	StateDir   string            `json:"stateDir,omitempty"`
	Journals   []string          `json:"journals"`
	Unreadable map[string]string `json:"unreadable"`
	// Control is the control API asked; Running whether it answered.
	Control string `json:"control,omitempty"`
	Running bool   `json:"running"`
	Parts   int    `json:"parts"`
	Healthy int    `json:"healthy"`
	// LabError says why no lab answered.
	LabError string `json:"labError,omitempty"`
}

// CheckHealth says whether the state dir can be read (and which journals
// in it can, and why the others cannot) and whether the lab answers. It
// fails when a configured source cannot be used: a state dir that is not
// there, a controlUrl that does not answer. A lab that is not running while
// only a state dir is set is fine: past runs are still served.
func (in *Instance) CheckHealth(ctx context.Context, _ *backend.CheckHealthRequest) (*backend.CheckHealthResult, error) {
	h := Health{Journals: []string{}, Unreadable: map[string]string{}}
	var msgs []string
	failed := false
	if in.store != nil {
		h.StateDir = string(in.store.dir)
		runs, problems, err := in.store.all()
		if err != nil {
			failed = true
			msgs = append(msgs, err.Error())
		} else {
			for _, r := range runs {
				h.Journals = append(h.Journals, r.Name)
			}
			msg := fmt.Sprintf("state dir %s: %d journals readable", in.store.dir, len(runs))
			if len(problems) > 0 {
				var names []string
				for _, p := range problems {
					h.Unreadable[p.Name] = p.Err.Error()
					names = append(names, p.Name)
				}
				msg += fmt.Sprintf(", %d unreadable (%s; see details)", len(problems), strings.Join(names, ", "))
			}
			msgs = append(msgs, msg)
		}
	}
	c, err := in.control()
	if err == nil {
		h.Control = c.Base
		var ps []supervisor.PartStatus
		ps, err = c.Parts(ctx)
		if err == nil {
			h.Running, h.Parts = true, len(ps)
			for _, p := range ps {
				if p.Health == supervisor.HealthOK {
					h.Healthy++
				}
			}
			msgs = append(msgs, fmt.Sprintf("lab running at %s: %d of %d parts healthy", c.Base, h.Healthy, h.Parts))
		} else {
			err = fmt.Errorf("lab control API %s does not answer: %w", c.Base, err)
		}
	}
	if err != nil {
		h.LabError = err.Error()
		msgs = append(msgs, err.Error())
		if in.settings.ControlURL != "" {
			failed = true // asked for explicitly: it must answer
		}
	}
	res := &backend.CheckHealthResult{Status: backend.HealthStatusOk, Message: strings.Join(msgs, "; ")}
	if failed {
		res.Status = backend.HealthStatusError
	}
	b, err := jsonMarshal(h)
	if err != nil {
		return nil, err
	}
	res.JSONDetails = b
	return res, nil
}
