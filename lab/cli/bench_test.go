package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/bench"
)

func TestBenchUpSettleListIsIncreasingAndBounded(t *testing.T) {
	ok := []time.Duration{5 * time.Second, time.Minute, 5 * time.Minute}
	if err := checkSettle(ok); err != nil {
		t.Fatalf("checkSettle(%v) = %v, want nil", ok, err)
	}
	for _, tc := range []struct {
		settle []time.Duration
		want   string
	}{
		{nil, "at least one"},
		{[]time.Duration{0}, "positive"},
		{[]time.Duration{time.Minute, 5 * time.Second}, "increasing order"},
		{[]time.Duration{2 * time.Hour}, "at most 1h"},
	} {
		err := checkSettle(tc.settle)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("checkSettle(%v) = %v, want an error mentioning %q", tc.settle, err, tc.want)
		}
	}
}

// A step not held prints why under its line, and a variant that held no
// rate says so in the summary instead of "0/s at 0.0 ms".
func TestBenchPostSaysWhyAndWhatNothingHeldMeans(t *testing.T) {
	var steps bytes.Buffer
	printStep(&steps, bench.Step{
		Phase: "variant", N: 1, Variant: "rpc", Rate: 1000, Scheduled: 20000, Acked: 15942, Why: "success 79.71% < 99.90%",
		Failures: map[string]uint64{"5xx": 4058},
		Refused:  map[string]uint64{"webserver-rpc: bulkhead queue_full": 4058},
		Calls:    []bench.EdgeCalls{{Part: "webserver-rpc", Dependency: "ratings-rpc", Calls: 15942, MeanMs: 226.5, Pool: 10}},
	})
	for _, want := range []string{
		"NOT held: success 79.71% < 99.90%\n",
		"      failed, as the generator saw them: 5xx 4058\n",
		"      counted in the rpc parts: webserver-rpc: bulkhead queue_full 4058\n",
		"      calls between them: webserver-rpc → ratings-rpc 15942 at mean 226.5 ms (pool 10)\n",
	} {
		if !strings.Contains(steps.String(), want) {
			t.Errorf("step lines lack %q:\n%s", want, steps.String())
		}
	}

	var table bytes.Buffer
	printVariants(&table, []postVariant{
		{Variant: "rpc"},
		{Variant: "stream", MaxRate: 1000, P99Ms: 33.3, LoadAvg: 5.11},
	}, false)
	lines := strings.Split(table.String(), "\n")
	if len(lines) < 3 || !strings.Contains(lines[1], "none held") || strings.Contains(lines[1], "0/s") {
		t.Errorf("rpc's row should say none held:\n%s", table.String())
	}
	if !strings.Contains(lines[2], "≥ 1000/s") || !strings.Contains(lines[2], "33.3 ms") {
		t.Errorf("stream's row:\n%s", table.String())
	}
}
