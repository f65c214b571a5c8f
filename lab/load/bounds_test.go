package load

import (
	"strings"
	"testing"
	"time"

	"github.com/ratingslab/lab/services/lib/duration"
)

func TestParseRate(t *testing.T) {
	for in, want := range map[string]float64{"500": 500, "500/s": 500, "30/m": 0.5, "1/500ms": 2, "7200/h": 2} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"0", "-5/s", "fast", "5/fortnight", "5/0s", "NaN"} {
		if _, err := ParseRate(in); err == nil || !strings.Contains(err.Error(), "--rate") {
			t.Errorf("ParseRate(%q): want an error naming --rate, got %v", in, err)
		}
	}
}

func TestBoundsNeedForceThenHoldAnyway(t *testing.T) {
	long := Arrival{Executor: ExecutorConstant, Rate: 1, Duration: duration.Duration(time.Hour)}
	if err := CheckBounds(long, false); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("an hour without --force: want an error suggesting --force, got %v", err)
	}
	if err := CheckBounds(long, true); err != nil {
		t.Errorf("an hour with --force: %v", err)
	}
	tooLong := Arrival{Executor: ExecutorConstant, Rate: 1, Duration: duration.Duration(25 * time.Hour)}
	if err := CheckBounds(tooLong, true); err == nil {
		t.Error("25 hours must be refused even with --force")
	}
	fast := Arrival{Executor: ExecutorConstant, Rate: 60000, Duration: duration.Duration(time.Second)}
	if err := CheckBounds(fast, false); err == nil || !strings.Contains(err.Error(), "--rate") {
		t.Errorf("60000/s without --force: got %v", err)
	}
}
