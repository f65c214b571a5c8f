package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/procstat"
	"github.com/ratingslab/lab/lab/supervisor"
)

// A lab whose supervisor does not answer is not stale while its processes
// live: `lab up` and `lab status` refuse, say what to do, and touch nothing.
// `lab down` then stops it for good, supervisor included.
func TestUnresponsiveLabIsNeverSweptAsStale(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	t.Parallel()
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

	// 0. A part paused by hand (kill -STOP) shows as paused, and says by whom.
	if err := syscall.Kill(pids["ratings-rpc"], syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	l.WaitPart("ratings-rpc", supervisor.HealthPaused, 10*time.Second)
	if out := l.MustRun("status"); !strings.Contains(lineOf(out, "ratings-rpc "), "paused outside the lab") {
		t.Errorf("lab status should show ratings-rpc paused outside the lab:\n%s", out)
	}
	syscall.Kill(pids["ratings-rpc"], syscall.SIGCONT)
	l.WaitPart("ratings-rpc", supervisor.HealthOK, 10*time.Second)

	// 1. The supervisor is paused (SIGSTOP).
	if err := syscall.Kill(st.PID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, "the supervisor", st.PID)
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
			stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			t.Errorf("%s (pid %d) survived lab down: /proc/%d/stat %s", name, pid, pid, stat)
		}
	}
	if _, err := os.Stat(l.Dir.State()); err == nil {
		t.Error("lab down left lab.json behind")
	}
}

// waitStopped waits until every thread of pid is stopped (procstat):
// kill(2) returns once SIGSTOP is queued, and the process runs on until one
// of its threads takes it; under load a supervisor answered /healthz after
// kill returned (lab up then rightly found it up).
func waitStopped(t *testing.T, what string, pid int) {
	t.Helper()
	labtest.Eventually(t, 10*time.Second, what+" stopped in every thread", func() error {
		if !procstat.Stopped(pid) {
			return fmt.Errorf("threads of pid %d (tid:state): %s", pid, procstat.Describe(procstat.Threads(pid)))
		}
		return nil
	})
}

// A part whose own state is damaged fails at once, naming the file, and
// `lab up` reports it within seconds instead of waiting out its timeout.
// A broker whose partition file lost acknowledged records says so.
func TestDamagedStateFailsFastAndNamesIt(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	t.Parallel()
	l := labtest.Start(t)
	l.MustRun("load", "--scenario", "smoke", "--duration", "3s", "--quiet")
	l.MustRun("down")

	upFails := func(t *testing.T, what string, want ...string) string {
		t.Helper()
		start := time.Now()
		out, err := l.Run("up", "--timeout", "60s")
		took := time.Since(start)
		if err == nil {
			t.Fatalf("lab up with %s succeeded:\n%s", what, out)
		}
		t.Logf("lab up with %s failed after %v", what, took.Round(100*time.Millisecond))
		if took > 25*time.Second {
			t.Errorf("lab up with %s took %v to fail, want it reported at once", what, took.Round(time.Second))
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("lab up with %s should say %q:\n%s", what, w, out)
			}
		}
		if _, err := os.Stat(l.Dir.State()); err == nil {
			t.Errorf("lab up with %s left lab.json behind", what)
		}
		// Parts that had started before the failing one are rolled back.
		if left := labProcesses(string(l.Dir)); len(left) > 0 {
			t.Errorf("lab up with %s left processes of the lab running: %v", what, left)
		}
		return out
	}

	// Garbage over the pages of ratings-stream's database.
	db := filepath.Join(l.Dir.Data("ratings-stream"), "ratings-stream.db")
	good, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), good...)
	for i := 4096; i < len(bad); i++ {
		bad[i] = byte(i * 7)
	}
	os.WriteFile(db, bad, 0o644)
	upFails(t, "a corrupt ratings-stream.db", db, "corrupt")
	os.WriteFile(db, good, 0o644)

	// Garbage in movies-connect's position file.
	pos := filepath.Join(l.Dir.Data("movies-connect"), "movies-connect.position.json")
	goodPos, err := os.ReadFile(pos)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(pos, []byte("\x00\x01garbage{"), 0o644)
	upFails(t, "a corrupt position file", pos, "corrupt", "movies-connect failed")
	os.WriteFile(pos, goodPos, 0o644)

	// 300 bytes cut off the end of a ratings partition: records the broker
	// acknowledged are gone. The broker says so; ratings-stream, whose
	// state includes them, refuses the shorter log at once.
	var seg string
	var size int64
	// ratings-[0-9]*: the ratings topic's partitions, not ratings-dlq's or
	// ratings-stream-changelog's.
	files, _ := filepath.Glob(filepath.Join(l.Dir.BrokerData(), "partitions", "ratings-[0-9]*", "*.dat"))
	for _, f := range files {
		if st, err := os.Stat(f); err == nil && st.Size() > size {
			seg, size = f, st.Size()
		}
	}
	if size < 600 {
		t.Fatalf("no ratings partition file with data among %v", files)
	}
	os.Truncate(seg, size-300)
	out := upFails(t, "a truncated ratings partition", "WARNING from broker: DATA LOST", "record(s) the broker held before its restart are gone", "ratings-stream failed")
	if !strings.Contains(out, filepath.Base(filepath.Dir(seg))) {
		t.Errorf("the warning should name the partition %s:\n%s", filepath.Base(filepath.Dir(seg)), out)
	}
}

// A `lab up` killed partway leaves nothing behind: the lab is findable from
// the supervisor's first moment (lab.json, phase "starting"), `lab status`
// says it is starting, `lab down` stops it with the start still going, and a
// lab nobody stops stops itself, because `lab up` never handed it over.
// Every wait is on the lab's own state (control API, processes, ports).
func TestLabUpKilledMidStartLeavesNothingBehind(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	labtest.SkipOnCluster(t, "the supervisor's start is the same on every platform")
	t.Parallel()

	t.Run("lab down while lab up waits", func(t *testing.T) {
		t.Parallel()
		l := labtest.New(t)
		up := startUp(t, l)
		holdAtBroker(t, l)
		out := l.MustRun("status")
		for _, want := range []string{"The lab is starting", "broker", "lab down"} {
			if !strings.Contains(out, want) {
				t.Errorf("lab status of a starting lab should say %q:\n%s", want, out)
			}
		}
		if st := status(t, l); st.Up || st.Phase != "starting" {
			t.Errorf("lab status --json of a starting lab: up %v, phase %q; want up false, phase starting", st.Up, st.Phase)
		}
		if out, err := l.Run("up"); err == nil || !strings.Contains(out, "still starting") {
			t.Errorf("a second lab up while the lab starts: err %v, want a refusal saying it is still starting:\n%s", err, out)
		}
		out = l.MustRun("down")
		if !strings.Contains(out, "was still starting") {
			t.Errorf("lab down of a starting lab should say it was still starting:\n%s", out)
		}
		assertGone(t, l) // lab down returns once everything is gone
		if err := up.wait(t, 30*time.Second); err == nil {
			t.Error("lab up succeeded although lab down stopped the lab it was starting")
		}
	})

	t.Run("lab up killed, then lab down", func(t *testing.T) {
		t.Parallel()
		l := labtest.New(t)
		up := startUp(t, l)
		holdAtBroker(t, l)
		up.kill(t)
		if out, err := l.Run("down"); err != nil {
			t.Fatalf("lab down: %v\n%s", err, out)
		}
		assertGone(t, l)
	})

	t.Run("held at a part, then nobody stops it", func(t *testing.T) {
		t.Parallel()
		l := labtest.New(t)
		// webserver-stream looks for Kafka where there is none: every other
		// part comes up healthy, `lab up` waits for it.
		up := startUp(t, l, "--part-flag", "webserver-stream=--brokers=127.0.0.1:1")
		c := l.Control()
		labtest.Eventually(t, 60*time.Second, "every part but webserver-stream healthy", func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			ps, err := c.Parts(ctx)
			if err != nil {
				return err
			}
			for _, p := range ps {
				if p.Name != "webserver-stream" && p.Health != supervisor.HealthOK {
					return fmt.Errorf("%s is %s", p.Name, p.Health)
				}
			}
			return nil
		})
		up.kill(t)
		// webserver-stream gives up on its own after 30 s; the supervisor
		// stops everything well before.
		labtest.Eventually(t, 20*time.Second, "the lab stopped by its supervisor", func() error {
			if left := labProcesses(string(l.Dir)); len(left) > 0 {
				return fmt.Errorf("processes still run: %v", left)
			}
			return nil
		})
		assertGone(t, l)
		if log, _ := os.ReadFile(l.Dir.SupervisorLog()); !strings.Contains(string(log), "exited before handing it over") {
			t.Errorf("the supervisor log should say why it stopped:\n%s", log)
		}
		if out := l.MustRun("status"); !strings.Contains(out, "not running") {
			t.Errorf("lab status after the lab stopped itself:\n%s", out)
		}
	})
}

// upProcess is a `lab up` running in the background.
type upProcess struct {
	cmd  *exec.Cmd
	done chan error
}

func startUp(t *testing.T, l *labtest.Lab, args ...string) *upProcess {
	t.Helper()
	t.Cleanup(func() {
		if out, err := l.Run("down"); err != nil {
			t.Logf("lab down: %v\n%s", err, out)
		}
	})
	cmd := exec.Command(l.Bin, append([]string{"--dir", string(l.Dir), "--port-base", fmt.Sprint(l.Ports.Base), "up", "--no-prometheus"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	up := &upProcess{cmd: cmd, done: make(chan error, 1)}
	go func() { up.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-up.done
		if t.Failed() {
			t.Logf("lab up:\n%s", out.String())
		}
	})
	return up
}

// holdAtBroker pauses the broker as soon as it is started: the supervisor
// waits for it before it starts the other parts (or, had the broker been
// quicker, the Kafka clients wait for it), so `lab up` cannot finish. The
// supervisor's control API answers meanwhile.
func holdAtBroker(t *testing.T, l *labtest.Lab) {
	t.Helper()
	var broker int
	labtest.Eventually(t, 30*time.Second, "the broker started", func() error {
		b, err := os.ReadFile(filepath.Join(string(l.Dir), "pids", "broker.pid"))
		if err != nil {
			return err
		}
		broker, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err
	})
	if err := syscall.Kill(broker, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(broker, syscall.SIGCONT) })
	labtest.Eventually(t, 10*time.Second, "the supervisor's control API", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return l.Control().Healthy(ctx)
	})
}

// wait waits (bounded) for `lab up` to end and returns how it ended.
func (u *upProcess) wait(t *testing.T, bound time.Duration) error {
	t.Helper()
	select {
	case err := <-u.done:
		u.done <- err
		return err
	case <-time.After(bound):
		t.Fatalf("lab up still runs after %v", bound)
		return nil
	}
}

// kill SIGKILLs `lab up`, which must still be waiting for the lab.
func (u *upProcess) kill(t *testing.T) {
	t.Helper()
	select {
	case err := <-u.done:
		u.done <- err
		t.Fatalf("lab up ended (%v) before it was killed: the lab was not held", err)
	default:
	}
	if err := u.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	err := <-u.done
	u.done <- err
}

// assertGone: no process of the lab runs (none carries its LAB_DIR), every
// port of its block is free, and lab.json is gone.
func assertGone(t *testing.T, l *labtest.Lab) {
	t.Helper()
	if left := labProcesses(string(l.Dir)); len(left) > 0 {
		t.Errorf("processes of the lab still run: %v", left)
	}
	for port := l.Ports.Base; port < l.Ports.Base+layout.PortBlock; port++ {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Errorf("port %d is still taken: %v", port, err)
			continue
		}
		ln.Close()
	}
	if _, err := os.Stat(l.Dir.State()); err == nil {
		t.Error("lab.json is left behind")
	}
}
