package load

import (
	"math"
	"testing"
	"time"
)

func TestHistogramQuantilesAreWithinTwoPercent(t *testing.T) {
	var h latencyHistogram
	for i := 1; i <= 10000; i++ {
		h.add(time.Duration(i) * time.Microsecond) // 1 µs .. 10 ms, uniform
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := q * 10 * float64(time.Millisecond)
		got := float64(h.quantile(q))
		if math.Abs(got-want)/want > 0.02 {
			t.Errorf("p%v: got %s, want %s ± 2%%", q*100, time.Duration(got), time.Duration(want))
		}
	}
	if h.max != 10*time.Millisecond || h.mean() != 5000500*time.Nanosecond {
		t.Errorf("max %s, mean %s", h.max, h.mean())
	}
	for _, d := range []time.Duration{0, 1, 127, 128, 129, time.Hour, math.MaxInt64} {
		if b := bucketOf(d); b < 0 || b >= len(h.counts) {
			t.Errorf("%d ns falls outside the buckets (%d)", d, b)
		}
		if d > 0 && d < math.MaxInt64/2 {
			if mid := bucketMid(bucketOf(d)); math.Abs(float64(mid-d))/float64(d) > 0.016 {
				t.Errorf("%s lands in a bucket represented by %s", d, mid)
			}
		}
	}
}
