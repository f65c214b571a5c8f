package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/procstat"
	"github.com/ratingslab/lab/services/lib/servetest"
)

// The supervisor's view of one part is a small state machine: each test
// drives a real child process (sleep, sh) through one of its transitions
// and reads the state the control API and `lab status` would show.

// probeStub answers the health probe with whatever err is set to.
type probeStub struct{ err error }

func (s *probeStub) probe(context.Context) error { return s.err }

func newTestProcess(t *testing.T, path string, args ...string) (*process, *probeStub) {
	t.Helper()
	dir := t.TempDir()
	stub := &probeStub{}
	p := &process{name: "part", variant: "rpc", path: path, args: args,
		logPath: filepath.Join(dir, "part.log"), pidDir: dir, labDir: dir, probe: stub.probe}
	t.Cleanup(func() { p.stop(time.Second) })
	return p, stub
}

func startSleeper(t *testing.T) (*process, *probeStub) {
	t.Helper()
	p, stub := newTestProcess(t, "/bin/sleep", "60")
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	return p, stub
}

func wantHealth(t *testing.T, p *process, want Health) PartStatus {
	t.Helper()
	st := p.status()
	if st.Health != want {
		t.Fatalf("health = %s (error %q), want %s", st.Health, st.Error, want)
	}
	return st
}

func TestAPartNotStartedYetIsPending(t *testing.T) {
	// While the lab starts, `lab status` lists the parts still to come.
	p, _ := newTestProcess(t, "/bin/sleep", "60")
	p.check(context.Background()) // nothing to probe
	st := wantHealth(t, p, HealthPending)
	if st.PID != 0 || st.Uptime != "" {
		t.Fatalf("a part never started shows pid %d, uptime %q", st.PID, st.Uptime)
	}
}

func TestAStartedPartIsStartingUntilItsFirstHealthyProbe(t *testing.T) {
	p, stub := startSleeper(t)
	st := wantHealth(t, p, HealthStarting)
	if st.PID <= 0 {
		t.Fatalf("a running part shows pid %d", st.PID)
	}
	if b, err := os.ReadFile(p.pidFile()); err != nil || string(b) != fmt.Sprint(st.PID) {
		t.Fatalf("pid file holds %q (%v), want %d", b, err, st.PID)
	}

	// A failing probe while starting is not "unhealthy": it has not come up yet.
	stub.err = errors.New("connection refused")
	p.check(context.Background())
	st = wantHealth(t, p, HealthStarting)
	if st.Error != "connection refused" {
		t.Fatalf("error = %q, want the probe's", st.Error)
	}

	stub.err = nil
	p.check(context.Background())
	st = wantHealth(t, p, HealthOK)
	if st.Error != "" {
		t.Fatalf("a healthy part keeps the old error %q", st.Error)
	}
}

// Callers reach a part through the edges in front of it, which open a
// moment after it listens: until they do, the part is not healthy, so
// `lab up` does not return (nor a restart count as done) while a first
// request would still be refused.
func TestAPartIsHealthyOnlyOnceTheEdgesInFrontOfItAreOpen(t *testing.T) {
	p, _ := startSleeper(t)
	open := false
	p.edgesOpen = func(name string) bool {
		if name != "part" {
			t.Errorf("asked about the edges of %q", name)
		}
		return open
	}
	p.check(context.Background())
	if st := wantHealth(t, p, HealthStarting); !strings.Contains(st.Error, "edges in front of it are not open yet") {
		t.Fatalf("error %q: want it to say the edges are not open yet", st.Error)
	}
	open = true
	p.check(context.Background())
	wantHealth(t, p, HealthOK)
}

func TestAHealthyPartThatFailsItsProbeIsUnhealthyAndRecovers(t *testing.T) {
	p, stub := startSleeper(t)
	p.check(context.Background())
	wantHealth(t, p, HealthOK)

	stub.err = errors.New("healthz 503: no broker")
	p.check(context.Background())
	wantHealth(t, p, HealthDown)

	stub.err = nil
	p.check(context.Background())
	wantHealth(t, p, HealthOK)
}

func TestAPartReportingAPermanentFailureIsFailed(t *testing.T) {
	p, stub := startSleeper(t)
	// Even while starting: waiting does not fix a corrupt file.
	stub.err = failedError{"state file is corrupt"}
	p.check(context.Background())
	st := wantHealth(t, p, HealthFailed)
	if st.Error != "state file is corrupt" {
		t.Fatalf("error = %q, want the part's own report", st.Error)
	}
}

func TestAPausedPartStaysPausedUntilContinued(t *testing.T) {
	p, _ := startSleeper(t)
	p.check(context.Background())
	if err := p.signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	wantHealth(t, p, HealthPaused)
	p.check(context.Background()) // a paused part is not probed: it would time out
	wantHealth(t, p, HealthPaused)

	if err := p.signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	p.check(context.Background())
	wantHealth(t, p, HealthOK)
}

func TestAPartPausedOutsideTheLabIsShownAsPaused(t *testing.T) {
	p, _ := startSleeper(t)
	p.check(context.Background())
	pid := p.status().PID
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
	// The kernel marks the process stopped asynchronously.
	servetest.Eventually(t, 5*time.Second, "the part shown paused", func() error {
		p.check(context.Background())
		if st := p.status(); st.Health != HealthPaused || !strings.Contains(st.Error, fmt.Sprintf("kill -CONT %d", pid)) {
			return fmt.Errorf("health %s, error %q", st.Health, st.Error)
		}
		return nil
	})

	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	servetest.Eventually(t, 5*time.Second, "the part healthy again", func() error {
		p.check(context.Background())
		if st := p.status(); st.Health != HealthOK {
			return fmt.Errorf("health %s, error %q", st.Health, st.Error)
		}
		return nil
	})
}

func TestStoppingAPartPausedOutsideTheLabLetsItStopCleanly(t *testing.T) {
	// A part that handles SIGTERM (every lab part does) cannot act on it
	// while stopped: stop continues it, so it exits on its own instead of
	// being killed when the grace period ends.
	p, _ := newTestProcess(t, "/bin/sh", "-c", `trap 'exit 0' TERM; echo "trap ""set"; while :; do sleep 0.05; done`)
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	pid := p.status().PID
	servetest.Eventually(t, 5*time.Second, "the shell's trap set", func() error {
		if b, _ := os.ReadFile(p.logPath); !strings.Contains(string(b), "trap set") { // the command line in the log says "trap ""set"
			return errors.New("not yet")
		}
		return nil
	})
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
	servetest.Eventually(t, 5*time.Second, "the part stopped by kill -STOP", func() error {
		if !stoppedOutside(pid) {
			return errors.New("not stopped yet")
		}
		return nil
	})
	p.stop(30 * time.Second)
	p.mu.Lock()
	exit := p.exitErr
	p.mu.Unlock()
	if exit == nil || exit.Error() != "exit status 0" {
		t.Fatalf("the part ended with %v, want its own exit 0 on SIGTERM (not a SIGKILL after the grace period)", exit)
	}
}

func TestAPartThatExitsOnItsOwnIsExitedWithItsLastWords(t *testing.T) {
	p, _ := newTestProcess(t, "/bin/sh", "-c", "echo 'open data: disk full'; exit 3")
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	p.wait(context.Background())
	p.check(context.Background()) // an exited part is not probed
	st := wantHealth(t, p, HealthExited)
	if !strings.Contains(st.Error, "exit status 3") || !strings.Contains(st.Error, "open data: disk full") {
		t.Fatalf("error = %q, want the exit status and the last log line", st.Error)
	}
	if st.PID != 0 {
		t.Fatalf("an exited part shows pid %d", st.PID)
	}
	if _, err := os.Stat(p.pidFile()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the pid file outlives the process: %v", err)
	}
}

func TestAPartExitingCleanlyOnItsOwnIsStillExited(t *testing.T) {
	// The supervisor never expects a part to stop by itself: exit 0 is news.
	p, _ := newTestProcess(t, "/bin/true")
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	p.wait(context.Background())
	if st := wantHealth(t, p, HealthExited); st.Error != "exit status 0" {
		t.Fatalf("error = %q", st.Error)
	}
}

func TestAStoppedOrKilledPartIsStoppedNotExited(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(p *process) error
	}{
		{"stop", func(p *process) error { p.stop(5 * time.Second); return nil }},
		{"SIGKILL", func(p *process) error { return p.signal(syscall.SIGKILL) }},
		{"SIGTERM", func(p *process) error { return p.signal(syscall.SIGTERM) }},
		{"stop while paused", func(p *process) error {
			if err := p.signal(syscall.SIGSTOP); err != nil {
				return err
			}
			p.stop(5 * time.Second) // continues it so that it can act on SIGTERM
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := startSleeper(t)
			if err := tc.stop(p); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			p.wait(ctx)
			if ctx.Err() != nil {
				t.Fatal("the process did not exit")
			}
			wantHealth(t, p, HealthStopped)
			if err := p.signal(syscall.SIGSTOP); err == nil {
				t.Fatal("signalling a stopped part succeeded")
			}
		})
	}
}

func TestARestartCountsAndStartsFresh(t *testing.T) {
	p, stub := startSleeper(t)
	if err := p.start(); err == nil {
		t.Fatal("starting a running part twice succeeded")
	}
	stub.err = failedError{"corrupt"}
	p.check(context.Background())
	wantHealth(t, p, HealthFailed)

	p.stop(5 * time.Second)
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	st := wantHealth(t, p, HealthStarting)
	if st.Restarts != 1 || st.Error != "" {
		t.Fatalf("after a restart: restarts %d, error %q; want 1 and none", st.Restarts, st.Error)
	}
}

func TestPausingAPartAnswersOnceEveryThreadHasStopped(t *testing.T) {
	// kill(2) returns once SIGSTOP is queued; a Go part's other threads run
	// on until one of them takes it. The pause action answers only when the
	// part can no longer answer anyone. The part: this test binary, its
	// threads kept busy (TestHelperBusyThreads).
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p, _ := newTestProcess(t, exe, "-test.run=^TestHelperBusyThreads$")
	p.env = []string{busyThreadsEnv + "=1"}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	pid := p.status().PID
	servetest.Eventually(t, 10*time.Second, "the part's threads running", func() error {
		if n := len(procstat.Threads(pid)); n < 3 {
			return fmt.Errorf("%d threads", n)
		}
		return nil
	})
	s := &Supervisor{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx := context.Background()
	for range 20 {
		if err := s.act(ctx, p, ActionPause); err != nil {
			t.Fatal(err)
		}
		if !procstat.Stopped(pid) {
			t.Fatalf("pause answered while threads still run (tid:state): %s", procstat.Describe(procstat.Threads(pid)))
		}
		if err := s.act(ctx, p, ActionResume); err != nil {
			t.Fatal(err)
		}
	}
}

const busyThreadsEnv = "LAB_TEST_BUSY_THREADS"

// TestHelperBusyThreads is the busy part of the pause test, not a test.
func TestHelperBusyThreads(t *testing.T) {
	if os.Getenv(busyThreadsEnv) != "1" {
		t.Skip("the busy part of TestPausingAPartAnswersOnceEveryThreadHasStopped")
	}
	for range 4 {
		go func() {
			for {
				runtime.Gosched()
			}
		}()
	}
	select {}
}
