package bench

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of /proc/<pid>/stat's times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// ProcCPU is the CPU time (user+system) process pid has used so far, from
// /proc/<pid>/stat; its resolution is one clock tick (10 ms).
func ProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces and parentheses: the
	// fields that follow start after its last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// Proc is one process whose CPU a step accounts for.
type Proc struct {
	Name    string `json:"name"`
	Variant string `json:"variant"` // whose ratings it serves ("" when shared)
	PID     int    `json:"pid"`
	// Metrics is its /metrics URL (a part's admin listener), read before
	// and after each step for what it refused and the calls it made; ""
	// for none. Shared processes (no Variant) are not read.
	Metrics string `json:"metrics,omitempty"`
}

// cpuSnapshot is every process's CPU time at one moment (absent: unreadable).
type cpuSnapshot map[string]time.Duration

func snapshotCPU(procs []Proc) cpuSnapshot {
	s := cpuSnapshot{}
	for _, p := range procs {
		if t, err := ProcCPU(p.PID); err == nil {
			s[p.Name] = t
		}
	}
	return s
}

// since is the CPU each process used from before to s (only processes
// readable at both moments).
func (s cpuSnapshot) since(before cpuSnapshot) map[string]time.Duration {
	out := map[string]time.Duration{}
	for name, t := range s {
		if t0, ok := before[name]; ok && t >= t0 {
			out[name] = t - t0
		}
	}
	return out
}

// LoadAverage is the machine's 1-minute load average (-1 when unreadable).
func LoadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}
