package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/procstat"
	"github.com/ratingslab/lab/lab/supervisor"
)

// A lab's recorded state is stale only when every process it recorded is
// provably gone. A supervisor that does not answer (paused with SIGSTOP, busy,
// or lab.json naming a wrong control port) is not gone: its parts still hold
// the lab's data and ports, so nothing may sweep them.

// liveProcess is one recorded process of a lab that still runs.
type liveProcess struct {
	Name  string
	PID   int
	State string // from /proc/<pid>/stat: "running", "paused (SIGSTOP)", ...
}

func (p liveProcess) String() string { return fmt.Sprintf("%s pid %d (%s)", p.Name, p.PID, p.State) }

// liveProcesses lists the lab's recorded processes that are alive and
// carry this lab's LAB_DIR: the supervisor of st (if st.PID > 0) and every
// <dir>/pids/*.pid.
func liveProcesses(dir layout.Dir, st supervisor.State) []liveProcess {
	var out []liveProcess
	seen := map[int]bool{}
	add := func(name string, pid int) {
		if pid <= 0 || seen[pid] || !alive(pid) || !ownedByLab(pid, dir) {
			return
		}
		seen[pid] = true
		out = append(out, liveProcess{Name: name, PID: pid, State: procState(pid)})
	}
	add("supervisor", st.PID)
	files, _ := filepath.Glob(filepath.Join(dir.Path("pids"), "*.pid"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			continue
		}
		add(strings.TrimSuffix(filepath.Base(f), ".pid"), pid)
	}
	return out
}

// procState names a process's scheduler state (procstat.State).
func procState(pid int) string {
	st, ok := procstat.State(pid)
	switch {
	case !ok:
		return "unknown state"
	case st == 'T' || st == 't':
		return "paused (SIGSTOP)"
	case st == 'D':
		return "in uninterruptible I/O"
	default:
		return "running"
	}
}

// unresponsiveLabError explains why a command refuses to touch a lab whose
// supervisor does not answer while its processes live, and what to do.
func unresponsiveLabError(dir layout.Dir, st supervisor.State, live []liveProcess, cause error) error {
	names := make([]string, len(live))
	var paused []string
	for i, p := range live {
		names[i] = "  " + p.String()
		if strings.HasPrefix(p.State, "paused") {
			paused = append(paused, strconv.Itoa(p.PID))
		}
	}
	hint := ""
	if len(paused) > 0 {
		hint = fmt.Sprintf("If it was paused on purpose, continue it (kill -CONT %s) and run 'lab status'.\n", strings.Join(paused, " "))
	}
	return fmt.Errorf("the lab in %s is still running but its supervisor does not answer at %s (%v).\n"+
		"Its processes are alive, so its state is not stale and nothing was touched:\n%s\n%s"+
		"To stop it for good: 'lab down --dir %s' (it kills the recorded processes)",
		dir, st.Control, cause, strings.Join(names, "\n"), hint, dir)
}

// Commands annotated annotPorts=portsOwn choose their own ports (they start
// a lab, or are one of its processes); every other command talks to the
// running lab of --dir and takes its ports from that lab's state.
const (
	annotPorts = "lab:ports"
	portsOwn   = "own"
)

// adoptRunningPorts makes g's port base the running lab's, read from its
// lab.json, so that `lab load --dir D` reaches the lab started with
// `lab up --dir D --port-base N`. An explicit --port-base (or LAB_PORT_BASE)
// that contradicts the lab's is an error naming both.
func (g *globals) adoptRunningPorts(explicit bool) error {
	st, err := supervisor.ReadState(g.dir())
	if err != nil || st.PortBase == 0 {
		return nil // no lab (or a corrupt state file, which the command reports)
	}
	if explicit && st.PortBase != g.portBase {
		return fmt.Errorf("--port-base %d: the lab in %s runs on port base %d (from %s); drop --port-base (and LAB_PORT_BASE) or pass %d",
			g.portBase, g.dir(), st.PortBase, g.dir().State(), st.PortBase)
	}
	g.portBase = st.PortBase
	return nil
}
