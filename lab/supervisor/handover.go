package supervisor

import (
	"errors"
	"io"
	"net/http"
	"os"
)

// A lab is handed over whole or not at all. `lab up` starts the supervisor
// with the read end of a pipe (Config.Handover) and keeps the write end;
// once it has seen every part healthy it calls POST /v1/handover, and only
// then tells the user the lab is up. If `lab up` dies before that (killed,
// its terminal closed, a test's time bound), the pipe reaches EOF with no
// handover and the supervisor stops every part and exits, so no half-started
// lab is left holding the ports. Throughout, lab.json says where the lab is
// (State.Phase), so `lab status` and `lab down` find it from its first moment.

// errStopping refuses a handover to a lab that is already stopping.
var errStopping = errors.New("the lab is stopping")

// setPhase records the lab's phase in lab.json.
func (s *Supervisor) setPhase(p Phase) {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	s.phase = p
	s.saveStateLocked()
}

// saveState rewrites lab.json (after a runtime change of the options).
func (s *Supervisor) saveState() {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	s.saveStateLocked()
}

// removeState deletes lab.json as the supervisor exits; nothing writes it
// again after that.
func (s *Supervisor) removeState() {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	s.phase = ""
	if err := RemoveState(s.cfg.Dir); err != nil {
		s.log.Error("remove lab.json", "err", err)
	}
}

func (s *Supervisor) saveStateLocked() {
	if s.phase == "" {
		return // not started, or gone
	}
	s.optMu.Lock()
	opts := s.cfg.Options
	s.optMu.Unlock()
	st := State{PID: os.Getpid(), PortBase: s.cfg.Ports.Base, Control: s.cfg.Ports.Control(), Started: s.started, Options: opts, Phase: s.phase}
	if err := WriteState(s.cfg.Dir, st); err != nil {
		s.log.Error("write lab.json", "err", err)
	}
}

// Phase is where the lab is now.
func (s *Supervisor) Phase() Phase {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	return s.phase
}

// handOver marks the lab as handed over to the user: from now on the
// supervisor outlives the `lab up` that started it.
func (s *Supervisor) handOver() error {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if s.phase == PhaseStopping {
		return errStopping
	}
	s.handedOver = true
	if s.phase != PhaseRunning {
		s.phase = PhaseRunning
		s.saveStateLocked()
	}
	return nil
}

// allStarted moves the lab to running when no `lab up` is waiting to hand
// it over (a supervisor run by hand or by compose).
func (s *Supervisor) allStarted() {
	if s.cfg.Handover == nil {
		s.setPhase(PhaseRunning)
	}
}

// watchHandover waits for EOF on the pipe from `lab up` and stops the lab
// if `lab up` ended before it handed the lab over.
func (s *Supervisor) watchHandover(r io.Reader) {
	_, _ = io.Copy(io.Discard, r)
	s.stateMu.Lock()
	handed := s.handedOver
	s.stateMu.Unlock()
	if handed {
		return
	}
	s.log.Warn("the 'lab up' that started this lab exited before handing it over (every part healthy): stopping every part, so nothing half-started is left behind")
	s.requestStop()
}

func (s *Supervisor) handleHandover(w http.ResponseWriter, r *http.Request) {
	if err := s.handOver(); err != nil {
		writeError(w, http.StatusConflict, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"phase": string(PhaseRunning)})
}
