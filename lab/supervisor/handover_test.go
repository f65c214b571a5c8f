package supervisor

import (
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/layout"
)

// newHandoverSupervisor is a supervisor with no parts, started by a `lab up`
// that holds the write end of the handover pipe.
func newHandoverSupervisor(t *testing.T) (*Supervisor, *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	s := &Supervisor{cfg: Config{Dir: layout.Dir(t.TempDir()), Ports: layout.Ports{Base: 20000}, Handover: r},
		log: slog.New(slog.DiscardHandler), stopped: make(chan struct{})}
	s.started = time.Now()
	s.setPhase(PhaseStarting)
	return s, w
}

func stoppedWithin(s *Supervisor, d time.Duration) bool {
	select {
	case <-s.stopped:
		return true
	case <-time.After(d):
		return false
	}
}

// lab.json says where the lab is from the supervisor's first moment.
func phaseOnDisk(t *testing.T, s *Supervisor) Phase {
	t.Helper()
	st, err := ReadState(s.cfg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	return st.Current()
}

func TestALabWhoseLabUpDiesBeforeTheHandoverStops(t *testing.T) {
	s, w := newHandoverSupervisor(t)
	if got := phaseOnDisk(t, s); got != PhaseStarting {
		t.Fatalf("lab.json phase %q, want starting", got)
	}
	go s.watchHandover(s.cfg.Handover)
	w.Close() // lab up is gone: killed, or its terminal closed
	if !stoppedWithin(s, 5*time.Second) {
		t.Fatal("the supervisor did not stop after its lab up died before the handover")
	}
	if err := s.handOver(); err != nil {
		t.Fatalf("a late handover: %v", err) // harmless; the stop is already requested
	}
}

func TestAHandedOverLabOutlivesItsLabUp(t *testing.T) {
	s, w := newHandoverSupervisor(t)
	watched := make(chan struct{})
	go func() { s.watchHandover(s.cfg.Handover); close(watched) }()
	if err := s.handOver(); err != nil {
		t.Fatal(err)
	}
	if got := phaseOnDisk(t, s); got != PhaseRunning {
		t.Fatalf("lab.json phase %q after the handover, want running", got)
	}
	w.Close() // lab up printed the URLs and exited
	<-watched
	select {
	case <-s.stopped:
		t.Fatal("a handed-over lab stopped when its lab up exited")
	default:
	}
}

func TestAStoppingLabIsNotHandedOver(t *testing.T) {
	s, _ := newHandoverSupervisor(t)
	s.setPhase(PhaseStopping)
	if err := s.handOver(); err == nil {
		t.Fatal("a stopping lab was handed over")
	}
	s.removeState()
	s.saveState() // a runtime change arriving late writes nothing
	if _, err := ReadState(s.cfg.Dir); err != ErrNoState {
		t.Fatalf("lab.json after the supervisor removed it: %v", err)
	}
}
