package load

import (
	"math/bits"
	"time"
)

// latencyHistogram records durations in log-linear buckets (64 per power of
// two, so quantiles are within 1.6 %) with constant memory and O(1) insert,
// so the live view can afford one per variant per interval at any rate.
type latencyHistogram struct {
	counts [58 * 64]uint64
	n      uint64
	sum    time.Duration
	max    time.Duration
}

const subBits = 6 // 64 sub-buckets

func bucketOf(d time.Duration) int {
	v := uint64(max(d, 0))
	e := bits.Len64(v)
	if e <= subBits+1 {
		return int(v) // exact below 128 ns
	}
	shift := e - subBits - 1
	return shift*64 + int(v>>shift)
}

// bucketMid is a representative value of bucket i (its middle).
func bucketMid(i int) time.Duration {
	if i < 128 {
		return time.Duration(i)
	}
	shift := i/64 - 1
	m := uint64(i - shift*64)
	lo := m << shift
	return time.Duration(lo + (uint64(1)<<shift)/2)
}

func (h *latencyHistogram) add(d time.Duration) {
	h.counts[bucketOf(d)]++
	h.n++
	h.sum += d
	if d > h.max {
		h.max = d
	}
}

func (h *latencyHistogram) reset() { *h = latencyHistogram{} }

// quantile returns the q-quantile (0..1), 0 when empty. The maximum is exact.
func (h *latencyHistogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(bucketMid(i), h.max)
		}
	}
	return h.max
}

func (h *latencyHistogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}
