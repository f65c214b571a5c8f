package serve

import (
	"math"
	"testing"
)

// The duration buckets are dense enough that any quantile interpolated
// inside one is within 10 % of the exact value: neighbours differ by at
// most 2^(1/8), from 1 ms to past 30 s.
func TestDurationBucketsAreDense(t *testing.T) {
	b := DurationBuckets
	if b[0] != 0.001 || b[len(b)-1] < 30 {
		t.Fatalf("buckets %v..%v, want 1 ms to at least 30 s", b[0], b[len(b)-1])
	}
	for i := 1; i < len(b); i++ {
		if r := b[i] / b[i-1]; r > math.Pow(2, 1.0/8)*1.0001 || r <= 1 {
			t.Errorf("bucket %v → %v: ratio %.4f, want at most 2^(1/8)", b[i-1], b[i], r)
		}
	}
	if len(b) != 121 {
		t.Errorf("%d buckets, want 121", len(b))
	}
}
