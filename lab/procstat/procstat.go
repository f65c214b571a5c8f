// Package procstat reads a process's scheduler state from /proc.
//
// A SIGSTOPped process is paused only once every one of its threads is:
// kill(2) returns as soon as the signal is queued, the kernel wakes one
// thread to begin the group stop, and the others run on until it does
// (under load on two cores, up to 1.5 s; a supervisor answered HTTP in that
// window). So "stopped" here means every thread in state T.
package procstat

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// State returns the scheduler state letter of pid (R, S, D, T, t, Z, ...)
// from /proc/<pid>/stat, its main thread's; ok is false when the process is
// gone. The main thread is T only once the group stop has begun, after which
// no thread goes back to the program's code (a running one is interrupted),
// so T means paused; a process not yet T may be stopping already.
func State(pid int) (state byte, ok bool) {
	return stateOf(fmt.Sprintf("/proc/%d/stat", pid))
}

// Threads returns the state letter of every thread of pid, by thread id
// (from /proc/<pid>/task/*/stat); none when the process is gone.
func Threads(pid int) map[int]byte {
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	out := make(map[int]byte, len(files))
	for _, f := range files {
		tid, err := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		if err != nil {
			continue
		}
		if st, ok := stateOf(f); ok { // a thread that exited meanwhile is gone
			out[tid] = st
		}
	}
	return out
}

// Stopped reports whether pid is alive and every one of its threads is
// stopped (T): no code of it runs until it is continued.
func Stopped(pid int) bool {
	threads := Threads(pid)
	for _, st := range threads {
		if st != 'T' {
			return false
		}
	}
	return len(threads) > 0
}

// Describe lists threads as "tid:state", for messages.
func Describe(threads map[int]byte) string {
	tids := make([]int, 0, len(threads))
	for tid := range threads {
		tids = append(tids, tid)
	}
	slices.Sort(tids)
	parts := make([]string, len(tids))
	for i, tid := range tids {
		parts[i] = fmt.Sprintf("%d:%c", tid, threads[tid])
	}
	return strings.Join(parts, " ")
}

func stateOf(statFile string) (byte, bool) {
	b, err := os.ReadFile(statFile)
	if err != nil {
		return 0, false
	}
	// The command name, in parentheses, may itself hold spaces and ')'.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2], true
	}
	return 0, false
}
