// Package promtest runs the installed Prometheus for tests: a real server on
// a free loopback port with a given configuration, stopped when the test
// ends. Tests that need it skip, naming the install command, when no
// prometheus binary is installed.
package promtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/prom"
	"github.com/ratingslab/lab/services/lib/servetest"
)

// StartTimeout bounds how long Prometheus may take to become ready.
const StartTimeout = 60 * time.Second

// Start runs prometheus with config (a prometheus.yml) and returns its base
// URL once it is ready. The server and its data go away with the test.
func Start(t testing.TB, config []byte) string {
	t.Helper()
	bin, ok := prom.Find()
	servetest.Need(t, ok, "prometheus", prom.InstallHint)
	dir := t.TempDir()
	configFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configFile, config, 0o644); err != nil {
		t.Fatal(err)
	}
	// A port probed free may be taken before prometheus binds it; try again
	// on another one a few times.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		url, err := start(t, bin, dir, configFile, attempt)
		if err == nil {
			return url
		}
		lastErr = err
	}
	t.Fatalf("prometheus did not start: %v", lastErr)
	return ""
}

func start(t testing.TB, bin, dir, configFile string, attempt int) (string, error) {
	addr, err := freeAddr()
	if err != nil {
		return "", err
	}
	logPath := filepath.Join(dir, fmt.Sprintf("prometheus-%d.log", attempt))
	logFile, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	cmd := exec.Command(bin,
		"--config.file="+configFile,
		"--storage.tsdb.path="+filepath.Join(dir, fmt.Sprintf("data-%d", attempt)),
		"--web.listen-address="+addr,
		"--web.enable-lifecycle",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return "", err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		logFile.Close()
	}

	url := "http://" + addr
	deadline := time.Now().Add(StartTimeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			logFile.Close()
			out, _ := os.ReadFile(logPath)
			return "", fmt.Errorf("prometheus exited (%v):\n%s", err, out)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := prom.Ready(ctx, url)
		cancel()
		if err == nil {
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					out, _ := os.ReadFile(logPath)
					t.Logf("prometheus output:\n%s", out)
				}
			})
			return url, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	stop()
	return "", fmt.Errorf("not ready within %v", StartTimeout)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
