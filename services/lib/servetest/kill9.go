package servetest

import (
	"bufio"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// KillChildMidWrite is the outer half of a kill -9 test: it runs this test
// binary again as a child with env set (the test's own function, seeing
// env, plays the writer and reports on stdout), gives every line the child
// prints to read, sends SIGKILL as soon as enough returns true, then reads
// the lines the child printed before it died and waits for it. The child
// is killed after 60 s whatever it printed, so the test is bounded.
func KillChildMidWrite(t *testing.T, env string, read func(line string), enough func() bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run", "^"+t.Name()+"$")
	cmd.Env = append(os.Environ(), env)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	lines := bufio.NewScanner(out)
	for !enough() && lines.Scan() {
		read(lines.Text())
	}
	// kill -9 while the child keeps writing: a batch is being written.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() { // lines printed before the kill count too
		read(lines.Text())
	}
	cmd.Wait()
}
