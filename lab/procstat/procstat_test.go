package procstat

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/ratingslab/lab/services/lib/servetest"
)

func TestAStoppedProcessIsStoppedInEveryThreadAndAContinuedOneIsNot(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid := cmd.Process.Pid
	if st, ok := State(pid); !ok || st == 'T' {
		t.Fatalf("a running sleep: state %q ok %v", st, ok)
	}
	if Stopped(pid) {
		t.Fatal("a running process reported stopped")
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	servetest.Eventually(t, 10*time.Second, "every thread stopped", func() error {
		if !Stopped(pid) {
			return fmt.Errorf("threads: %s", Describe(Threads(pid)))
		}
		return nil
	})
	if st, _ := State(pid); st != 'T' {
		t.Fatalf("a stopped process: state %q, want T", st)
	}
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// SIGCONT wakes every thread before kill returns.
	if Stopped(pid) {
		t.Fatal("a continued process reported stopped")
	}
}

func TestThisProcessListsEveryThread(t *testing.T) {
	threads := Threads(os.Getpid())
	if len(threads) < 2 { // a Go process runs several threads
		t.Fatalf("threads of this test process: %s", Describe(threads))
	}
	if st, ok := threads[os.Getpid()]; !ok || st == 'T' {
		t.Fatalf("the main thread: %q ok %v (all: %s)", st, ok, Describe(threads))
	}
}

func TestAGoneProcessIsNeitherStoppedNorListed(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if _, ok := State(pid); ok {
		t.Skipf("pid %d was reused", pid)
	}
	if Stopped(pid) || len(Threads(pid)) > 0 {
		t.Fatal("a gone process reported stopped or with threads")
	}
}
