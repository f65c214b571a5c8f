// Package machinecpu reads how busy the machine's CPUs are, from the
// aggregate line of /proc/stat: the share of all CPU time, over an
// interval, that was spent running anything (user, system, interrupts,
// steal) rather than idle or waiting for I/O.
//
// Both variants of a lab, its broker and Prometheus share the machine's
// cores; an experiment whose control fails with no fault applied often
// failed for want of CPU, and this is the figure that says so.
package machinecpu

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// Modes name the times of /proc/stat's aggregate line, in the kernel's
// order (guest and guest_nice, which follow, are already inside user and
// nice).
var Modes = [...]string{"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"}

// Times are the machine's cumulative CPU times since boot, in clock ticks,
// summed over all CPUs.
type Times struct {
	// ByMode holds the ticks of each of Modes; zero for a mode an older
	// kernel does not report.
	ByMode [len(Modes)]uint64
}

// idle and iowait are the modes in which a CPU ran nothing.
const idle, iowait = 3, 4

// Total is the ticks of every mode.
func (t Times) Total() uint64 {
	var n uint64
	for _, m := range t.ByMode {
		n += m
	}
	return n
}

// Busy is the ticks of every mode but idle and iowait.
func (t Times) Busy() uint64 { return t.Total() - t.ByMode[idle] - t.ByMode[iowait] }

// statFile is where the kernel publishes the times.
const statFile = "/proc/stat"

// Read returns the times now. It fails where /proc/stat does not exist
// (not Linux) or has no aggregate "cpu" line.
func Read() (Times, error) {
	b, err := os.ReadFile(statFile)
	if err != nil {
		return Times{}, err
	}
	return parse(b)
}

// parse reads the first line of /proc/stat: "cpu user nice system idle
// iowait irq softirq steal guest guest_nice" (older kernels stop earlier).
// guest and guest_nice are already inside user and nice.
func parse(stat []byte) (Times, error) {
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	sc := bufio.NewScanner(bytes.NewReader(line))
	sc.Split(bufio.ScanWords)
	if !sc.Scan() || sc.Text() != "cpu" {
		return Times{}, errors.New("/proc/stat: no aggregate cpu line")
	}
	var v []uint64
	for sc.Scan() && len(v) < len(Modes) {
		n, err := strconv.ParseUint(sc.Text(), 10, 64)
		if err != nil {
			return Times{}, fmt.Errorf("/proc/stat: cpu line: %w", err)
		}
		v = append(v, n)
	}
	if len(v) < 4 {
		return Times{}, fmt.Errorf("/proc/stat: cpu line has %d times, want at least 4", len(v))
	}
	var t Times
	copy(t.ByMode[:], v)
	return t, nil
}

// BusySince is the share (0..1) of the CPU time between prev and t that
// was busy; ok is false when no time passed or the counters went back.
func (t Times) BusySince(prev Times) (share float64, ok bool) {
	busy, total, prevBusy, prevTotal := t.Busy(), t.Total(), prev.Busy(), prev.Total()
	if total <= prevTotal || busy < prevBusy {
		return 0, false
	}
	return float64(busy-prevBusy) / float64(total-prevTotal), true
}
