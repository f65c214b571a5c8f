// Package idlegc lowers the Go collector's target while a process is idle
// and restores the default as soon as it is busy again.
//
// An idle lab process still allocates a little (a Prometheus scrape every
// second, health probes, Kafka polls), so its heap fills up to the
// collector's goal, which never goes below 4 MiB × GOGC/100, and stays
// resident. GOGC=50 halves that floor but, set for good, runs the collector
// twice as often under load, where the lab's targets are CPU-bound. Here the
// target follows how often the collector runs: after a collection that came
// more than Quiet after the previous one the process is idle and the target
// is IdlePercent; after one that came sooner, it is Go's default again. A
// busy process collects many times a second, so under load nothing changes;
// an idle one pays at most one collection of a small heap per Quiet.
//
// A GOGC the user set in the environment is theirs: Start then does nothing.
package idlegc

import (
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"time"
)

const (
	// IdlePercent is the collector's target while idle.
	IdlePercent = 50
	// BusyPercent is Go's default target, used while busy.
	BusyPercent = 100
	// Quiet is the gap between two collections above which the process
	// counts as idle.
	Quiet = time.Second
)

// Start follows the process's collections until stop is called; it does
// nothing (and stop is a no-op) when the environment sets GOGC.
func Start() (stop func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	return start(debug.SetGCPercent).stop
}

func start(set func(int) int) *tuner {
	t := &tuner{last: time.Now(), percent: BusyPercent, set: set}
	t.arm()
	return t
}

// tuner sees every collection through a finalizer on an object it drops
// and re-creates each time: the runtime runs it once per cycle that found
// the object unreachable.
type tuner struct {
	mu      sync.Mutex
	last    time.Time // when the previous collection was seen
	percent int
	stopped bool
	set     func(int) int // debug.SetGCPercent
}

// sentinel has a pointer field so it is not a tiny allocation (those share
// a block with others and may never be finalized alone).
type sentinel struct {
	_ *tuner
	_ [16]byte
}

func (t *tuner) arm() {
	runtime.SetFinalizer(&sentinel{}, func(*sentinel) {
		if t.collected(time.Now()) {
			t.arm()
		}
	})
}

// collected records a collection seen at now and sets the target it
// calls for; it reports false once stopped.
func (t *tuner) collected(now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	want := BusyPercent
	if now.Sub(t.last) > Quiet {
		want = IdlePercent
	}
	t.last = now
	if want != t.percent {
		t.set(want)
		t.percent = want
	}
	return true
}

func (t *tuner) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.stopped && t.percent != BusyPercent {
		t.set(BusyPercent)
		t.percent = BusyPercent
	}
	t.stopped = true
}
