package faults

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ratingslab/lab/lab/supervisor"
)

// processAction is a part fault as supervisor process actions.
type processAction struct {
	Apply supervisor.Action // what the fault does
	// ApplyTimed replaces Apply when the fault is given --for ("": Apply):
	// a restart that stays down stops the part, and heal starts it.
	ApplyTimed supervisor.Action
	Heal       supervisor.Action // what undoes it ("": nothing to undo)
}

// killPart is the kill fault: SIGKILL, started again at heal (also what
// kill_leader and kill_coordinator do to the broker they find).
var killPart = processAction{Apply: supervisor.ActionKill, Heal: supervisor.ActionStart}

func (a processAction) effectOn(inj *Injector, rec *record, d time.Duration) effect {
	return &processEffect{procs: inj.cfg.Processes, part: rec.Target, act: a, timed: d > 0,
		started: func() { go inj.reapplyServiceFaults(rec.Target) }}
}

// startsProcess reports whether an action leaves a new process running.
func startsProcess(a supervisor.Action) bool {
	return a == supervisor.ActionStart || a == supervisor.ActionRestart
}

// processEffect kills, pauses or stops a part through the supervisor.
type processEffect struct {
	procs Processes
	part  string
	act   processAction
	timed bool // given --for
	// started runs after the part was started again (a restart, or the heal
	// of a kill): a new process has forgotten its in-service faults.
	started func()
}

func (e *processEffect) apply(ctx context.Context) error {
	if e.procs == nil {
		return errors.New("process faults need the supervisor")
	}
	action := e.act.Apply
	if e.timed && e.act.ApplyTimed != "" {
		action = e.act.ApplyTimed
	}
	_, err := e.procs.Signal(ctx, e.part, action)
	if err == nil && startsProcess(action) && e.started != nil {
		e.started()
	}
	return err
}

// heal undoes the fault: a killed or stopped part starts again, a paused one
// continues. At shutdown a killed part is left down: it is about to be
// stopped anyway, and starting it would only slow `lab down`.
func (e *processEffect) heal(ctx context.Context, shutdown bool) error {
	action := e.act.Heal
	if action == "" || (shutdown && action == supervisor.ActionStart) {
		return nil
	}
	_, err := e.procs.Signal(ctx, e.part, action)
	if err != nil && action == supervisor.ActionStart && strings.Contains(err.Error(), "already running") {
		return nil // someone started it by hand: healed all the same
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", action, e.part, err)
	}
	if startsProcess(action) && e.started != nil {
		e.started()
	}
	return nil
}
