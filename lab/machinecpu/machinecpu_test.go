package machinecpu

import (
	"math"
	"runtime"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/lib/metricname"
)

// The busy share counts every state but idle and iowait; guest time is
// already inside user, so it is not counted twice.
func TestTheBusyShareIsEverythingButIdleAndIOWait(t *testing.T) {
	before, err := parse([]byte("cpu  100 0 50 800 50 0 0 0 30 0\ncpu0 1 2 3 4\n"))
	if err != nil {
		t.Fatal(err)
	}
	after, err := parse([]byte("cpu  250 10 100 850 60 5 5 10 90 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	// busy: (250-100)+(10-0)+(100-50)+(5-0)+(5-0)+(10-0) = 230; idle and iowait: 50+10
	share, ok := after.BusySince(before)
	if !ok || math.Abs(share-230.0/290.0) > 1e-12 {
		t.Errorf("busy share %v (ok %v), want %v", share, ok, 230.0/290.0)
	}
	if _, ok := before.BusySince(after); ok {
		t.Error("a share from counters that went back")
	}
	if _, ok := after.BusySince(after); ok {
		t.Error("a share over no time")
	}
	if want := [len(Modes)]uint64{250, 10, 100, 850, 60, 5, 5, 10}; after.ByMode != want {
		t.Errorf("by mode %v, want %v", after.ByMode, want)
	}
}

func TestAStatWithoutTheAggregateLineIsAnError(t *testing.T) {
	for _, in := range []string{"", "cpu0 1 2 3 4\n", "cpu 1 2\n", "cpu 1 x 3 4\n"} {
		if _, err := parse([]byte(in)); err == nil {
			t.Errorf("parse(%q) = nil error", in)
		}
	}
}

// On Linux the machine's own times read, and grow.
func TestReadsThisMachine(t *testing.T) {
	a, err := Read()
	if err != nil {
		t.Skipf("no /proc/stat here: %v", err)
	}
	if a.Total() == 0 || a.Busy() > a.Total() {
		t.Errorf("times %+v", a)
	}
}

// The collector exports every mode in seconds (USER_HZ ticks / 100), and
// the modes add up to the total.
func TestTheCollectorExportsEachModeInSeconds(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector())
	before, err := Read()
	if err != nil {
		t.Skipf("no /proc/stat here: %v", err)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(fams) != 1 || fams[0].GetName() != metricname.MachineCPUSecondsTotal {
		t.Fatalf("families %v", fams)
	}
	var ticks uint64 // back in ticks, so float rounding cannot blur the comparison
	seen := map[string]bool{}
	for _, m := range fams[0].GetMetric() {
		seen[m.GetLabel()[0].GetValue()] = true
		ticks += uint64(math.Round(m.GetCounter().GetValue() * userHZ))
	}
	if len(seen) != len(Modes) {
		t.Errorf("modes %v, want %v", seen, Modes)
	}
	// The scrape came after before, so its total is at least before's.
	if max := before.Total() + uint64(runtime.NumCPU())*60*userHZ; ticks < before.Total() || ticks > max {
		t.Errorf("modes add up to %d ticks, want %d to %d", ticks, before.Total(), max)
	}
}
