package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"syscall"

	"github.com/ratingslab/lab/services/lib/serve"
)

// routes maps the whole control API. It listens on loopback only and, behind
// serve.Guard, refuses non-loopback peers, foreign Host and Origin headers,
// browsers changing anything and non-JSON bodies (no web page can drive it).
func (s *Supervisor) routes() http.Handler {
	mux := s.mux
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.Handle("GET /metrics", serve.MetricsHandler(s.reg, nil))
	serve.RegisterPprof(mux) // the edge proxies' CPU: lab bench profile supervisor
	mux.HandleFunc("GET /v1/parts", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Statuses())
	})
	mux.HandleFunc("GET /v1/lab", func(w http.ResponseWriter, r *http.Request) {
		s.optMu.Lock()
		opts := s.cfg.Options
		s.optMu.Unlock()
		writeJSON(w, http.StatusOK, LabInfo{Dir: string(s.cfg.Dir), PortBase: s.cfg.Ports.Base, Options: opts, Edges: s.edgeInfo(), PID: pid(), Phase: s.Phase()})
	})
	mux.HandleFunc("POST /v1/handover", s.handleHandover)
	mux.HandleFunc("POST /v1/resilience", s.handleResilience)
	mux.HandleFunc("POST /v1/parts/{name}/{action}", s.handleAction)
	mux.HandleFunc("POST /v1/shutdown", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "stopping"})
		s.requestStop()
	})
	return serve.Guard{What: "the control API"}.Wrap(mux)
}

// Handle adds a route to the control API (the fault injector's /v1/faults).
// Call it before Run.
func (s *Supervisor) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Config returns the supervisor's configuration.
func (s *Supervisor) Config() Config {
	s.optMu.Lock()
	defer s.optMu.Unlock()
	return s.cfg
}

// Signal sends a process action (kill, pause, resume, stop, start, restart)
// to a part, as the control API does.
func (s *Supervisor) Signal(ctx context.Context, part string, action Action) (PartStatus, error) {
	p, err := s.lookup(part)
	if err != nil {
		return PartStatus{}, err
	}
	if err := s.act(ctx, p, action); err != nil {
		return PartStatus{}, err
	}
	return p.status(), nil
}

// Action is a process-control action on a part (or a spawned process), as
// the control API's POST /v1/parts/{name}/{action} names it. kill, pause
// and resume are faults; stop and start are orderly; restart is stop then
// start.
type Action string

// Process-control actions.
const (
	ActionStart   Action = "start"   // start the part
	ActionStop    Action = "stop"    // SIGTERM, then SIGKILL after a grace period
	ActionRestart Action = "restart" // stop then start
	ActionKill    Action = "kill"    // SIGKILL
	ActionPause   Action = "pause"   // SIGSTOP
	ActionResume  Action = "resume"  // SIGCONT
)

func (s *Supervisor) handleAction(w http.ResponseWriter, r *http.Request) {
	p, err := s.lookup(r.PathValue("name"))
	if err != nil {
		writeError(w, http.StatusNotFound, err)
		return
	}
	if err := s.act(r.Context(), p, Action(r.PathValue("action"))); err != nil {
		code := http.StatusConflict
		if errors.Is(err, errUnknownAction) {
			code = http.StatusBadRequest
		}
		writeError(w, code, err)
		return
	}
	writeJSON(w, http.StatusOK, p.status())
}

var errUnknownAction = errors.New("unknown action")

func (s *Supervisor) act(ctx context.Context, p *process, action Action) error {
	switch action {
	case ActionStart:
		return p.start()
	case ActionStop:
		p.stop(StopGrace)
		return nil
	case ActionRestart:
		p.stop(StopGrace)
		return p.start()
	case ActionKill:
		err := p.signal(syscall.SIGKILL)
		if err == nil {
			p.wait(ctx) // so a following status shows it gone
		}
		return err
	case ActionPause:
		err := p.signal(syscall.SIGSTOP)
		// Answer once it is paused, so the caller's next request finds it so.
		if err == nil && !p.waitStopped(ctx) {
			s.log.Warn("pause: not every thread of the part has stopped yet", "part", p.name, "bound", pauseBound)
		}
		return err
	case ActionResume:
		return p.signal(syscall.SIGCONT)
	}
	return fmt.Errorf("%w %q; valid: start, stop, restart, kill, pause, resume", errUnknownAction, action)
}

// LabInfo describes the running lab.
type LabInfo struct {
	Dir      string     `json:"dir"`
	PortBase int        `json:"port_base"`
	PID      int        `json:"pid"`
	Options  any        `json:"options"`
	Edges    []EdgeInfo `json:"edges"`
	Phase    Phase      `json:"phase"`
}

// EdgeInfo is one fault proxy.
type EdgeInfo struct {
	Name     string `json:"name"`
	Variant  string `json:"variant"`
	Listen   string `json:"listen"`
	Upstream string `json:"upstream"`
}

func (s *Supervisor) edgeInfo() []EdgeInfo {
	var out []EdgeInfo
	for _, e := range s.edges.List() {
		out = append(out, EdgeInfo{Name: e.Name, Variant: string(e.Variant), Listen: e.Listen(s.cfg.Ports), Upstream: e.Upstream(s.cfg.Ports)})
	}
	return out
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}
