package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/parts"
)

// State is the lab.json file: how to find a lab's supervisor. The
// supervisor writes it as soon as its control API listens, before it starts
// any part, so a lab is never running without one: `lab status` and `lab
// down` find a lab that is still starting (or whose `lab up` was killed).
type State struct {
	PID      int           `json:"pid"`
	PortBase int           `json:"port_base"`
	Control  string        `json:"control"`
	Started  time.Time     `json:"started"`
	Options  parts.Options `json:"options"`
	// Phase is where the lab is in its life; a file without one (written
	// before phases existed) is a running lab.
	Phase Phase `json:"phase,omitempty"`
}

// Phase is where a supervisor is in its lab's life.
type Phase string

const (
	// PhaseStarting: the control API answers, parts are starting, and the
	// `lab up` that started it has not handed the lab over yet.
	PhaseStarting Phase = "starting"
	// PhaseRunning: every part was started and `lab up` handed the lab over
	// (saw every part healthy), or no `lab up` waits on it.
	PhaseRunning Phase = "running"
	// PhaseStopping: the supervisor is stopping every part and will exit.
	PhaseStopping Phase = "stopping"
)

// Current is the phase, an old file's empty one read as running.
func (st State) Current() Phase {
	if st.Phase == "" {
		return PhaseRunning
	}
	return st.Phase
}

// ErrNoState means no lab has been started in this directory (or it was
// stopped cleanly).
var ErrNoState = errors.New("no lab state")

// ReadState reads dir's lab.json. A corrupt file is an error naming it.
func ReadState(dir layout.Dir) (State, error) {
	b, err := os.ReadFile(dir.State())
	if errors.Is(err, os.ErrNotExist) {
		return State{}, ErrNoState
	}
	if err != nil {
		return State{}, fmt.Errorf("read %s: %w", dir.State(), err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil || st.PID <= 0 || st.Control == "" {
		if err == nil {
			err = errors.New("missing pid or control address")
		}
		return State{}, fmt.Errorf("state file %s is corrupt (%v); if no lab is running there, delete it", dir.State(), err)
	}
	return st, nil
}

// WriteState writes lab.json atomically.
func WriteState(dir layout.Dir, st State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := dir.State() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, dir.State())
}

// RemoveState deletes lab.json; a missing file is fine.
func RemoveState(dir layout.Dir) error {
	if err := os.Remove(dir.State()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
