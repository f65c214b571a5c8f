package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/procstat"
	"github.com/ratingslab/lab/lab/supervisor"
)

func newDownCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "down",
		// down finds the supervisor through lab.json whatever --port-base says.
		Annotations: map[string]string{annotPorts: portsOwn},
		Short:       "Stop every part of the lab; safe to run twice",
		Long: `Stop the lab: heal every active fault, stop each part gracefully (SIGTERM,
then SIGKILL after 5s), stop the supervisor, and make sure no process of the
lab is left behind. Data stays in the state directory; the next 'lab up'
continues from it. Running it when the lab is down does nothing.

It finds the lab through <dir>/lab.json, which the supervisor writes before
it starts any part: a lab that is still starting (its 'lab up' still waiting,
or killed partway) is stopped the same way, the parts started so far and the
start itself. Processes recorded in <dir>/pids whose supervisor is gone
(killed with SIGKILL) are killed. 'lab down' returns once every process of
the lab has exited, so its ports are free.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := g.dir()
			st, err := supervisor.ReadState(dir)
			if err != nil && !errors.Is(err, supervisor.ErrNoState) {
				fmt.Fprintf(g.stderr, "warning: %v\n", err)
			}
			if errors.Is(err, supervisor.ErrNoState) || err != nil {
				if n := sweepPIDs(dir); n > 0 {
					fmt.Fprintf(g.stdout, "Stopped %d leftover process(es) of the lab in %s.\n", n, dir)
				} else {
					fmt.Fprintf(g.stdout, "The lab in %s is not running.\n", dir)
				}
				_ = supervisor.RemoveState(dir)
				return nil
			}
			start := time.Now()
			stopSupervisor(cmd.Context(), dir, supervisor.NewClient(st.Control), st.PID, nil)
			switch st.Current() {
			case supervisor.PhaseStarting:
				fmt.Fprintf(g.stdout, "The lab in %s was still starting; it is down (%.1fs). Data is kept; 'lab up' continues from it.\n", dir, time.Since(start).Seconds())
			default:
				fmt.Fprintf(g.stdout, "The lab in %s is down (%.1fs). Data is kept; 'lab up' continues from it.\n", dir, time.Since(start).Seconds())
			}
			return nil
		},
	}
}

// stopSupervisor asks the supervisor to shut down, waits for it within a
// bound, then kills whatever is left.
func stopSupervisor(ctx context.Context, dir layout.Dir, c *supervisor.Client, pid int, exited <-chan error) {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err := c.Shutdown(sctx)
	cancel()
	deadline := time.Now().Add(supervisor.StopGrace + 10*time.Second)
	for err == nil && time.Now().Before(deadline) && alive(pid) {
		if exited != nil {
			select {
			case <-exited:
				pid = 0
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		time.Sleep(50 * time.Millisecond)
	}
	if pid > 0 && alive(pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		waitGone(pid)
	}
	sweepPIDs(dir)
	_ = supervisor.RemoveState(dir)
}

// waitGone waits until the SIGKILLed processes are gone, so that a command
// which killed them returns only when they are. The bound is generous: a
// process killed inside an fsync (ratings-rpc's SQLite commit) exits only
// when the disk answers, which on a busy machine took longer than 5s.
func waitGone(pids ...int) {
	deadline := time.Now().Add(30 * time.Second)
	for _, pid := range pids {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// sweepPIDs kills any process still recorded in <dir>/pids (e.g. after the
// supervisor itself was killed) and returns how many it found alive.
func sweepPIDs(dir layout.Dir) int {
	files, _ := filepath.Glob(filepath.Join(dir.Path("pids"), "*.pid"))
	var killed []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		pid, perr := strconv.Atoi(strings.TrimSpace(string(b)))
		if err == nil && perr == nil && pid > 0 && alive(pid) && ownedByLab(pid, dir) {
			_ = syscall.Kill(-pid, syscall.SIGKILL) // its process group
			_ = syscall.Kill(pid, syscall.SIGKILL)
			killed = append(killed, pid)
		}
		_ = os.Remove(f)
	}
	waitGone(killed...)
	return len(killed)
}

// ownedByLab guards against killing an unrelated process that reused a pid:
// the supervisor gives every child LAB_DIR=<this lab's dir> in its environment.
func ownedByLab(pid int, dir layout.Dir) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return false
	}
	for _, kv := range strings.Split(string(b), "\x00") {
		if kv == "LAB_DIR="+string(dir) {
			return true
		}
	}
	return false
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	// A zombie is dead for our purposes.
	state, ok := procstat.State(pid)
	return !ok || state != 'Z'
}
