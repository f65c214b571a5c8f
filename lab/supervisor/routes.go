package supervisor

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"syscall"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// routes maps the whole control API. It listens on loopback only and also
// refuses any non-loopback peer, in case it is ever bound elsewhere.
func (s *Supervisor) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /v1/parts", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Statuses())
	})
	mux.HandleFunc("GET /v1/lab", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, LabInfo{Dir: string(s.cfg.Dir), PortBase: s.cfg.Ports.Base, Options: s.cfg.Options, Edges: s.edgeInfo(), PID: pid()})
	})
	mux.HandleFunc("POST /v1/parts/{name}/{action}", s.handleAction)
	mux.HandleFunc("POST /v1/shutdown", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "stopping"})
		s.requestStop()
	})
	return loopbackOnly(mux)
}

// Actions on a part. kill, pause and resume are faults; stop and start are
// orderly; restart is stop then start.
var actions = map[string]string{
	"start": "start the part", "stop": "SIGTERM, then SIGKILL after a grace period",
	"restart": "stop then start", "kill": "SIGKILL", "pause": "SIGSTOP", "resume": "SIGCONT",
}

func (s *Supervisor) handleAction(w http.ResponseWriter, r *http.Request) {
	p, err := s.lookup(r.PathValue("name"))
	if err != nil {
		writeError(w, http.StatusNotFound, err)
		return
	}
	action := r.PathValue("action")
	switch action {
	case "start":
		err = p.start()
	case "stop":
		p.stop(StopGrace)
	case "restart":
		p.stop(StopGrace)
		err = p.start()
	case "kill":
		err = p.signal(syscall.SIGKILL)
		if err == nil {
			p.wait(r.Context()) // so a following status shows it gone
		}
	case "pause":
		err = p.signal(syscall.SIGSTOP)
	case "resume":
		err = p.signal(syscall.SIGCONT)
	default:
		writeError(w, http.StatusBadRequest, errors.New("unknown action "+action+"; valid: start, stop, restart, kill, pause, resume"))
		return
	}
	if err != nil {
		writeError(w, http.StatusConflict, err)
		return
	}
	writeJSON(w, http.StatusOK, p.status())
}

// LabInfo describes the running lab.
type LabInfo struct {
	Dir      string     `json:"dir"`
	PortBase int        `json:"port_base"`
	PID      int        `json:"pid"`
	Options  any        `json:"options"`
	Edges    []EdgeInfo `json:"edges"`
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

func loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			writeError(w, http.StatusForbidden, errors.New("the control API answers loopback clients only"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}
