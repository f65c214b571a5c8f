package cli

import (
	"strings"
	"testing"
	"time"
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
