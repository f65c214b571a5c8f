package idlegc

import (
	"runtime"
	"testing"
	"time"
)

func TestTargetIsLowAfterAQuietGapAndDefaultOnceCollectionsComeCloser(t *testing.T) {
	var sets []int
	start := time.Unix(1000, 0)
	tu := &tuner{last: start, percent: BusyPercent, set: func(p int) int { sets = append(sets, p); return 0 }}
	steps := []struct {
		after time.Duration // since the previous collection
		want  int
	}{
		{5 * time.Second, IdlePercent},        // idle: a scrape's garbage every few seconds
		{3 * time.Second, IdlePercent},        // still idle: target not set again
		{100 * time.Millisecond, BusyPercent}, // load began
		{50 * time.Millisecond, BusyPercent},
		{2 * time.Second, IdlePercent}, // load ended
	}
	now := start
	for i, s := range steps {
		now = now.Add(s.after)
		if !tu.collected(now) {
			t.Fatalf("step %d: collected reported stopped", i)
		}
		if tu.percent != s.want {
			t.Errorf("step %d (%v after the previous collection): target %d, want %d", i, s.after, tu.percent, s.want)
		}
	}
	if want := []int{IdlePercent, BusyPercent, IdlePercent}; !equal(sets, want) {
		t.Errorf("SetGCPercent calls %v, want %v (only on a change)", sets, want)
	}
	tu.stop()
	if sets[len(sets)-1] != BusyPercent {
		t.Errorf("after stop the target is %d, want the default %d back", sets[len(sets)-1], BusyPercent)
	}
	if tu.collected(now.Add(time.Minute)) {
		t.Error("collected after stop reported true: the tuner would re-arm")
	}
}

func TestTheTunerSeesEveryCollectionOfTheRuntime(t *testing.T) {
	tu := start(func(int) int { return BusyPercent }) // the test process's own target stays as it is
	defer tu.stop()
	seen := func() time.Time { tu.mu.Lock(); defer tu.mu.Unlock(); return tu.last }
	// The finalizer runs after each collection and re-arms: each of three
	// forced collections must be seen, not only the first.
	for i := 0; i < 3; i++ {
		before := seen()
		deadline := time.Now().Add(10 * time.Second)
		for seen().Equal(before) {
			if time.Now().After(deadline) {
				t.Fatalf("collection %d not seen by the tuner within 10 s", i+1)
			}
			runtime.GC()
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
