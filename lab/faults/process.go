package faults

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
	action := map[string]string{"kill": "kill", "pause": "pause", "restart": "restart"}[e.kind]
	if e.kind == "restart" && e.timed {
		action = "stop"
	}
	_, err := e.procs.Signal(ctx, e.part, action)
	if err == nil && action == "restart" && e.started != nil {
		e.started()
	}
	return err
}

// heal undoes the fault: a killed or stopped part starts again, a paused one
// continues. At shutdown a killed part is left down: it is about to be
// stopped anyway, and starting it would only slow `lab down`.
func (e *processEffect) heal(ctx context.Context, shutdown bool) error {
	var action string
	switch e.kind {
	case "kill", "restart":
		if shutdown {
			return nil
		}
		action = "start"
	case "pause":
		action = "resume"
	default:
		return nil
	}
	_, err := e.procs.Signal(ctx, e.part, action)
	if err != nil && action == "start" && strings.Contains(err.Error(), "already running") {
		return nil // someone started it by hand: healed all the same
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", action, e.part, err)
	}
	if action == "start" && e.started != nil {
		e.started()
	}
	return nil
}
