// Package registrytest starts the lab's registries for tests: the embedded
// one in process, and Apicurio Registry (from `make apicurio`) as a real
// Java process, once per test binary.
package registrytest

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/lab/registry"
)

// Embedded serves a fresh embedded registry (its store in a temp dir) and
// returns its base URL.
func Embedded(t testing.TB) string {
	t.Helper()
	srv, closeStore, err := registry.NewServer(t.TempDir(), prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { ts.Close(); closeStore() })
	return ts.URL
}

var apicurio struct {
	once sync.Once
	url  string
	cmd  *exec.Cmd
	err  error
	// exited gets the process's end: one goroutine waits for it, so
	// StopApicurio reads this instead of calling Wait a second time.
	exited chan error
}

// Apicurio returns the base URL of the Confluent-compatible API of one
// Apicurio Registry shared by the whole test binary (in-memory storage),
// starting it at first use; callers keep their subjects apart by name.
// Without `make apicurio` the test is skipped, except under CI (CI=true),
// where .ci/run fetched it and its absence is a failure.
func Apicurio(t testing.TB) string {
	t.Helper()
	if _, err := parts.ApicurioJar(parts.ApicurioHome()); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Apicurio Registry is required under CI: %v", err)
		}
		t.Skipf("Apicurio Registry not fetched: %v", err)
	}
	apicurio.once.Do(func() { apicurio.url, apicurio.cmd, apicurio.err = startApicurio(t) })
	if apicurio.err != nil {
		t.Fatal(apicurio.err)
	}
	return apicurio.url
}

// StopApicurio ends the shared Apicurio process (call from TestMain).
func StopApicurio() {
	if c := apicurio.cmd; c != nil && c.Process != nil {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		select {
		case <-apicurio.exited:
		case <-time.After(10 * time.Second):
		}
	}
}

func startApicurio(t testing.TB) (string, *exec.Cmd, error) {
	addr := fmt.Sprintf("127.0.0.1:%d", labtest.FreePortBase(t))
	path, args, err := parts.ApicurioCommand(addr, "")
	if err != nil {
		return "", nil, err
	}
	logf, err := os.CreateTemp("", "apicurio-*.log")
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start Apicurio: %w", err)
	}
	exited := make(chan error, 1)
	apicurio.exited = exited
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logf.Name())
			return "", nil, fmt.Errorf("Apicurio exited (%v):\n%s", err, tail(b))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/health/ready", nil)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return "http://" + addr + parts.ApicurioPath, cmd, nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	b, _ := os.ReadFile(logf.Name())
	return "", nil, fmt.Errorf("Apicurio not ready within 90s (log %s):\n%s", logf.Name(), tail(b))
}

func tail(b []byte) string {
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}
