package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/connbudget"
)

// hopChildEnv makes the test binary a hop process (TestMain below): the
// overload test needs a process whose descriptor limit it can lower
// for good.
const hopChildEnv = "BENCH_TEST_HOP_LISTEN"

func TestMain(m *testing.M) {
	if listen := os.Getenv(hopChildEnv); listen != "" {
		// 128 descriptors, soft and hard: a budget of 64 connections.
		lim := syscall.Rlimit{Cur: 128, Max: 128}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			fmt.Fprintln(os.Stderr, "setrlimit:", err)
			os.Exit(2)
		}
		if err := RunHop(context.Background(), listen, "", 201, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "hop:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// An overloaded hop — more clients at once than its descriptors allow —
// refuses the connections over its budget at once and says so, instead of
// running out of descriptors ("accept4: too many open files"); the
// connections it kept still answer, and it serves again once the load is
// gone.
func TestOverloadedHopRefusesWhatIsOverItsBudget(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var logs syncBuffer
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), hopChildEnv+"="+addr)
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitDial(t, addr)

	budget := 128 - connbudget.Reserve
	const clients = 300 // over twice the process's whole descriptor limit
	var answered, refused int
	var conns []net.Conn
	for range clients {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			refused++
			continue
		}
		conns = append(conns, c)
	}
	end := time.Now().Add(10 * time.Second) // for all of them: a hop that hangs fails in bounded time
	for _, c := range conns {
		c.SetDeadline(end)
		fmt.Fprintf(c, "POST /api/ratings HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			refused++
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == 201 {
			answered++
		}
	}
	t.Logf("%d clients at once, budget %d: %d answered, %d refused", clients, budget, answered, refused)
	if answered+refused != clients || answered < budget/2 || answered > budget || refused == 0 {
		t.Errorf("%d clients at once, budget %d: %d answered, %d refused", clients, budget, answered, refused)
	}
	for _, c := range conns {
		c.Close()
	}
	// Served again once the overload is gone.
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Post("http://"+addr+"/api/ratings", "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 201 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the overload: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The refusals are reported once a second, without descriptor errors.
	for deadline := time.Now().Add(3 * time.Second); !strings.Contains(logs.String(), "overloaded: refused"); {
		if time.Now().After(deadline) {
			t.Fatalf("hop log says nothing of the refusals:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Contains(logs.String(), "too many open files") {
		t.Errorf("hop ran out of descriptors:\n%s", logs.String())
	}
	if cmd.ProcessState != nil {
		t.Fatalf("hop exited: %v\n%s", cmd.ProcessState, logs.String())
	}
}

func waitDial(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("hop not listening on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var _ io.Writer = (*syncBuffer)(nil)
