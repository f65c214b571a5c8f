package faults

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ratingslab/lab/lab/supervisor"
)

// processEffect kills, pauses or stops a part through the supervisor.
type processEffect struct {
	procs Processes
	part  string
	kind  string
	timed bool // restart with --for: stay down, start on heal
	// started runs after the part was started again (a restart, or the heal
	// of a kill): a new process has forgotten its in-service faults.
	started func()
}

func (e *processEffect) apply(ctx context.Context) error {
	if e.procs == nil {
		return errors.New("process faults need the supervisor")
	}
	action := map[string]supervisor.Action{"kill": supervisor.ActionKill, "pause": supervisor.ActionPause, "restart": supervisor.ActionRestart}[e.kind]
	if e.kind == "restart" && e.timed {
		action = supervisor.ActionStop
	}
	_, err := e.procs.Signal(ctx, e.part, action)
	if err == nil && action == supervisor.ActionRestart && e.started != nil {
		e.started()
	}
	return err
}

// heal undoes the fault: a killed or stopped part starts again, a paused one
// continues. At shutdown a killed part is left down: it is about to be
// stopped anyway, and starting it would only slow `lab down`.
func (e *processEffect) heal(ctx context.Context, shutdown bool) error {
	var action supervisor.Action
	switch e.kind {
	case "kill", "restart":
		if shutdown {
			return nil
		}
		action = supervisor.ActionStart
	case "pause":
		action = supervisor.ActionResume
	default:
		return nil
	}
	_, err := e.procs.Signal(ctx, e.part, action)
	if err != nil && action == supervisor.ActionStart && strings.Contains(err.Error(), "already running") {
		return nil // someone started it by hand: healed all the same
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", action, e.part, err)
	}
	if action == supervisor.ActionStart && e.started != nil {
		e.started()
	}
	return nil
}
