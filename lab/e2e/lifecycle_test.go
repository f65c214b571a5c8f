package e2e

import (
	"encoding/json"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/lab/supervisor"
)

// A lab whose supervisor does not answer is not stale while its processes
// live: `lab up` and `lab status` refuse, say what to do, and touch nothing.
// `lab down` then stops it for good, supervisor included.
func TestUnresponsiveLabIsNeverSweptAsStale(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	l := labtest.Start(t)
	st, err := supervisor.ReadState(l.Dir)
	if err != nil {
		t.Fatal(err)
	}
	pids := map[string]int{"supervisor": st.PID}
	for _, p := range status(t, l).Parts {
		pids[p.Name] = p.PID
	}
	stateBefore, _ := os.ReadFile(l.Dir.State())
	allAlive := func(when string) {
		t.Helper()
		for name, pid := range pids {
			if pid <= 0 || syscall.Kill(pid, 0) != nil || zombie(pid) {
				t.Fatalf("%s: %s (pid %d) is gone", when, name, pid)
			}
		}
		if b, _ := os.ReadFile(l.Dir.State()); string(b) != string(stateBefore) {
			t.Fatalf("%s: lab.json changed or was removed:\n%s", when, b)
		}
	}

	// 1. The supervisor is paused (SIGSTOP).
	if err := syscall.Kill(st.PID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"up", "status"} {
		out, err := l.Run(cmd)
		if err == nil {
			t.Errorf("lab %s with a paused supervisor succeeded, want a refusal:\n%s", cmd, out)
		}
		for _, want := range []string{"still running", "does not answer", "paused (SIGSTOP)", "kill -CONT", "lab down"} {
			if !strings.Contains(out, want) {
				t.Errorf("lab %s with a paused supervisor should say %q:\n%s", cmd, want, out)
			}
		}
		if strings.Contains(out, "stale") && !strings.Contains(out, "not stale") {
			t.Errorf("lab %s called a live lab stale:\n%s", cmd, out)
		}
	}
	allAlive("after lab up with a paused supervisor")
	if err := syscall.Kill(st.PID, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if s := status(t, l); !s.Up {
		t.Fatal("after SIGCONT the lab should answer again")
	}

	// 2. lab.json names a wrong control port.
	wrong := st
	wrong.Control = "127.0.0.1:1"
	b, _ := json.Marshal(wrong)
	if err := os.WriteFile(l.Dir.State(), b, 0o644); err != nil {
		t.Fatal(err)
	}
	stateBefore = b
	if out, err := l.Run("up"); err == nil || !strings.Contains(out, "still running") {
		t.Errorf("lab up with lab.json naming a wrong control port: err %v, want a refusal naming the live processes:\n%s", err, out)
	}
	allAlive("after lab up with a wrong control port in lab.json")

	// 3. lab down stops it anyway, the supervisor included.
	l.MustRun("down")
	for name, pid := range pids {
		if syscall.Kill(pid, 0) == nil && !zombie(pid) {
			t.Errorf("%s (pid %d) survived lab down", name, pid)
		}
	}
	if _, err := os.Stat(l.Dir.State()); err == nil {
		t.Error("lab down left lab.json behind")
	}
}
