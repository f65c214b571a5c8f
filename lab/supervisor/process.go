package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ratingslab/lab/lab/procstat"
)

// Health of one process as the supervisor last probed it.
type Health string

const (
	HealthStarting Health = "starting"
	HealthOK       Health = "healthy"
	HealthDown     Health = "unhealthy"
	HealthPaused   Health = "paused"
	HealthStopped  Health = "stopped"
	// HealthPending: not started yet (the lab is still starting).
	HealthPending Health = "pending"
	HealthExited  Health = "exited"
	// HealthFailed: the part runs but reports a failure no waiting fixes
	// (its /healthz status "failed": a corrupt file, a gap in the log).
	HealthFailed Health = "failed"
)

// process is one supervised OS process. The supervisor never restarts it on
// its own: a killed part stays dead until someone asks for a restart.
type process struct {
	name    string
	variant string
	addr    string
	admin   string   // loopback admin listener ("" for processes without one)
	path    string   // executable
	args    []string // full argv after path
	logPath string
	pidDir  string
	env     []string
	labDir  string // marks the process as this lab's (see `lab down`)
	broker  bool   // a Kafka broker: started first, stopped last
	probe   func(ctx context.Context) error
	// onStart and onExit, when set, are told the process's name when it
	// started and once it has exited (its edges follow it).
	onStart, onExit func(name string)
	// edgesOpen, when set, must hold for the process to be healthy: its
	// callers reach it through edges that open a moment after it listens
	// (within a watch interval), and until then a first request is refused.
	edgesOpen func(name string) bool

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when cmd exits
	started  time.Time
	exitErr  error
	stopped  bool // stopped on purpose (stop, kill, shutdown)
	paused   bool
	health   Health
	lastErr  string
	warning  string // from the part's /healthz: healthy, but something to know
	restarts int
}

// start launches the process; its output is appended to its log file.
func (p *process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !p.exitedLocked() {
		return fmt.Errorf("%s is already running (pid %d)", p.name, p.cmd.Process.Pid)
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: open log: %w", p.name, err)
	}
	fmt.Fprintf(logf, "--- %s starting %s %v\n", time.Now().Format(time.RFC3339), p.path, p.args)
	cmd := exec.Command(p.path, p.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(append(os.Environ(), p.env...), "LAB_DIR="+p.labDir, "LAB_PART="+p.name)
	// Own process group, and die with the supervisor even if it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("%s: start: %w", p.name, err)
	}
	if p.cmd != nil {
		p.restarts++
	}
	p.cmd, p.done, p.started = cmd, make(chan struct{}), time.Now()
	p.exitErr, p.stopped, p.paused, p.health, p.lastErr = nil, false, false, HealthStarting, ""
	_ = os.WriteFile(p.pidFile(), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
	done := p.done
	go func() {
		err := cmd.Wait()
		logf.Close()
		if err != nil {
			if why := lastLogLine(p.logPath); why != "" {
				err = fmt.Errorf("%w: %s", err, why)
			}
		}
		p.mu.Lock()
		p.exitErr = err
		if err == nil {
			p.exitErr = errors.New("exit status 0")
		}
		_ = os.Remove(p.pidFile())
		p.mu.Unlock()
		if p.onExit != nil {
			p.onExit(p.name) // before done: whoever waits for the exit finds the edges closed
		}
		close(done)
	}()
	if p.onStart != nil {
		p.onStart(p.name)
	}
	return nil
}

func (p *process) pidFile() string { return filepath.Join(p.pidDir, p.name+".pid") }

func (p *process) exitedLocked() bool {
	if p.done == nil {
		return true
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the running process.
func (p *process) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.exitedLocked() {
		return fmt.Errorf("%s is not running", p.name)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%s: signal %v: %w", p.name, sig, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		p.paused, p.health = true, HealthPaused
	case syscall.SIGCONT:
		p.paused = false
	case syscall.SIGKILL, syscall.SIGTERM:
		p.stopped = true
	}
	return nil
}

// stop asks the process to stop with SIGTERM and kills it after grace.
func (p *process) stop(grace time.Duration) {
	p.mu.Lock()
	if p.cmd == nil || p.exitedLocked() {
		p.mu.Unlock()
		return
	}
	p.stopped = true
	proc, done := p.cmd.Process, p.done
	p.mu.Unlock()
	_ = proc.Signal(syscall.SIGTERM)
	// A stopped process cannot act on SIGTERM until continued, whether the
	// lab paused it or someone else did (kill -STOP); a running one ignores
	// SIGCONT.
	_ = proc.Signal(syscall.SIGCONT)
	select {
	case <-done:
	case <-time.After(grace):
		_ = proc.Signal(syscall.SIGKILL)
		<-done
	}
}

// waitStopped waits until every thread of the SIGSTOPped process is
// stopped and reports whether it is; it gives up when the process exits or
// ctx ends (bounded by pauseBound). kill(2) returns once the signal is
// queued, and the process runs on until one of its threads takes it
// (procstat).
func (p *process) waitStopped(ctx context.Context) bool {
	p.mu.Lock()
	if p.cmd == nil {
		p.mu.Unlock()
		return false
	}
	pid, done := p.cmd.Process.Pid, p.done
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, pauseBound)
	defer cancel()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !procstat.Stopped(pid) {
		select {
		case <-done:
			return false
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}

// pauseBound bounds waitStopped: a thread in uninterruptible I/O stops only
// when its I/O ends.
const pauseBound = 5 * time.Second

// wait blocks until the process has exited or ctx ends.
func (p *process) wait(ctx context.Context) {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// errEdgesNotOpen is the health of a part that answers its probe while an
// edge in front of it is still closed.
var errEdgesNotOpen = errors.New("it answers; the edges in front of it are not open yet (they open at the lab's next dial to it, within 250 ms)")

// check probes the process once and records the result.
func (p *process) check(ctx context.Context) {
	p.mu.Lock()
	running := p.cmd != nil && !p.exitedLocked()
	paused := p.paused
	var pid int
	if running {
		pid = p.cmd.Process.Pid
	}
	p.mu.Unlock()
	if !running || paused {
		return
	}
	if stoppedOutside(pid) {
		// SIGSTOPped by someone else (kill -STOP): a fault the lab did not
		// inject, shown as such rather than as a slow health check.
		p.mu.Lock()
		p.health = HealthPaused
		p.lastErr = fmt.Sprintf("paused outside the lab (SIGSTOP); 'kill -CONT %d' continues it", pid)
		p.mu.Unlock()
		return
	}
	err := p.probe(ctx)
	if err == nil && p.edgesOpen != nil && !p.edgesOpen(p.name) {
		err = errEdgesNotOpen
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exitedLocked() || p.paused {
		return
	}
	if err != nil {
		var failed failedError
		switch {
		case errors.As(err, &failed):
			p.health = HealthFailed
		case p.health != HealthStarting:
			p.health = HealthDown
		}
		p.lastErr = err.Error()
		return
	}
	p.health, p.lastErr = HealthOK, ""
}

// PartStatus is one process as reported by the control API and `lab status`.
type PartStatus struct {
	Name     string    `json:"name"`
	Variant  string    `json:"variant"`
	PID      int       `json:"pid,omitempty"`
	Addr     string    `json:"addr"`
	Admin    string    `json:"admin,omitempty"` // admin listener: /healthz, /metrics, /debug/pprof/, /admin/
	Health   Health    `json:"health"`
	Error    string    `json:"error,omitempty"`
	Warning  string    `json:"warning,omitempty"`
	Started  time.Time `json:"started,omitzero"`
	Uptime   string    `json:"uptime,omitempty"`
	Restarts int       `json:"restarts"`
	Log      string    `json:"log"`
}

func (p *process) status() PartStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := PartStatus{Name: p.name, Variant: p.variant, Addr: p.addr, Admin: p.admin, Health: p.health,
		Error: p.lastErr, Warning: p.warning, Restarts: p.restarts, Log: p.logPath}
	switch {
	case p.cmd == nil:
		s.Health = HealthPending
	case p.exitedLocked():
		s.Health = HealthExited
		if p.stopped {
			s.Health = HealthStopped
		}
		if p.exitErr != nil {
			s.Error = p.exitErr.Error()
		}
	default:
		s.PID, s.Started = p.cmd.Process.Pid, p.started
		s.Uptime = time.Since(p.started).Truncate(100 * time.Millisecond).String()
	}
	return s
}

// httpProbe checks GET http://addr/healthz (a part's admin listener)
// answers 200, and keeps the "warning" its JSON may carry (a broker that
// found its data damaged at start stays healthy but says so) on p.
func httpProbe(client *http.Client, addr string, p *process) func(context.Context) error {
	url := "http://" + addr + "/healthz"
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var h struct {
			Status  string `json:"status"`
			Error   string `json:"error"`
			Warning string `json:"warning"`
		}
		_ = json.Unmarshal(body, &h)
		p.setWarning(h.Warning)
		if resp.StatusCode != http.StatusOK {
			if h.Status == "failed" && h.Error != "" {
				return failedError{h.Error}
			}
			return fmt.Errorf("healthz %d: %.512s", resp.StatusCode, body)
		}
		return nil
	}
}

// failedError is a part's own report of a failure no waiting fixes.
type failedError struct{ msg string }

func (f failedError) Error() string { return f.msg }

func (p *process) setWarning(w string) {
	p.mu.Lock()
	p.warning = w
	p.mu.Unlock()
}

// lastLogLine is the last line a part wrote before it exited (`lab serve`
// prints its fatal error last), so `lab status` shows why it is gone.
func lastLogLine(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const tail = 4 << 10
	if st, err := f.Stat(); err == nil && st.Size() > tail {
		_, _ = f.Seek(st.Size()-tail, io.SeekStart)
	}
	b, _ := io.ReadAll(io.LimitReader(f, tail))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	if strings.HasPrefix(last, "--- ") { // the supervisor's own start marker: nothing was written
		return ""
	}
	if len(last) > 300 {
		last = last[:300] + "..."
	}
	return last
}

// stoppedOutside reports whether pid is in the stopped state ("T" in
// /proc/<pid>/stat, procstat.State) although the supervisor did not pause it.
func stoppedOutside(pid int) bool {
	st, ok := procstat.State(pid)
	return ok && st == 'T'
}
