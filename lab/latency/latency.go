// Package latency records request latencies for exact-enough percentiles:
// an HDR-style log-linear histogram with 256 sub-buckets per power of two,
// so every value is kept within 1/512 (0.2 %) of itself, in constant memory
// and with O(1) recording. It is how the lab turns the load generator's
// per-request latencies into the p50/p99 of progress lines, probes,
// verdicts, the journal and the report — never by interpolating between the
// edges of a Prometheus histogram.
//
// # Definitions
//
// A quantile q of n latencies is the nearest-rank order statistic: the
// ⌈q·n⌉-th smallest latency (the maximum for q = 1). Recorder and Counts
// report the middle of the bucket that holds it, clamped to the smallest
// and largest latency seen, so the figure is within ErrorBound of the exact
// order statistic; the maximum and minimum are exact. Exact computes the
// same definition over a plain list (the ledger's latencies) for checks.
package latency

import (
	"math"
	"math/bits"
	"slices"
	"sort"
	"time"
)

// subBits gives 2^subBits = 256 sub-buckets per power of two.
const subBits = 8

// ErrorBound is the largest relative error of a reported quantile against
// the exact nearest-rank order statistic: half a bucket's relative width.
const ErrorBound = 1.0 / (2 << subBits) // 1/512 ≈ 0.195 %

// maxIndex bounds bucket indexes: latencies up to 2^44 ns (4.9 hours).
const maxIndex = (44-subBits)<<subBits + 2<<subBits

// index is the bucket of d: exact below 2^(subBits+1) ns, then 2^subBits
// buckets per power of two.
func index(d time.Duration) int {
	v := uint64(max(d, 0))
	e := bits.Len64(v)
	if e <= subBits+1 {
		return int(v)
	}
	shift := e - subBits - 1
	i := shift<<subBits + int(v>>shift)
	return min(i, maxIndex-1)
}

// bounds are the smallest and the largest latency of bucket i.
func bounds(i int) (lo, hi time.Duration) {
	if i < 2<<subBits {
		return time.Duration(i), time.Duration(i)
	}
	shift := i>>subBits - 1
	m := uint64(i - shift<<subBits)
	lo = time.Duration(m << shift)
	return lo, lo + time.Duration(uint64(1)<<shift) - 1
}

// mid is the value reported for bucket i.
func mid(i int) time.Duration {
	lo, hi := bounds(i)
	return lo + (hi-lo)/2
}

// Recorder accumulates latencies. The zero value is ready; it is not safe
// for concurrent use (callers hold their own lock). Record is O(1) and does
// not allocate once the recorder has seen its first value.
type Recorder struct {
	counts  []uint32 // dense, by bucket index; allocated on first use
	touched []int32  // buckets with a count, in first-touch order
	c       Counts
}

// Record adds one latency (negative ones count as 0).
func (r *Recorder) Record(d time.Duration) {
	if r.counts == nil {
		r.counts = make([]uint32, maxIndex)
	}
	d = max(d, 0)
	i := index(d)
	if r.counts[i] == 0 {
		r.touched = append(r.touched, int32(i))
	}
	r.counts[i]++
	r.c.add(d)
}

// N is how many latencies were recorded.
func (r *Recorder) N() uint64 { return r.c.n }

// Quantile is q's latency (see the package documentation), 0 when empty.
func (r *Recorder) Quantile(q float64) time.Duration {
	return r.Snapshot().Quantile(q)
}

// Snapshot copies what was recorded into a compact, immutable Counts.
func (r *Recorder) Snapshot() Counts {
	c := r.c
	c.buckets = make([]bucket, 0, len(r.touched))
	for _, i := range r.touched {
		c.buckets = append(c.buckets, bucket{index: i, n: r.counts[i]})
	}
	slices.SortFunc(c.buckets, func(a, b bucket) int { return int(a.index - b.index) })
	return c
}

// Cut returns what was recorded and resets the recorder, keeping its
// memory: the per-interval use (one Counts per second).
func (r *Recorder) Cut() Counts {
	c := r.Snapshot()
	for _, i := range r.touched {
		r.counts[i] = 0
	}
	r.touched = r.touched[:0]
	r.c = Counts{}
	return c
}

type bucket struct {
	index int32
	n     uint32
}

// Counts is an immutable set of latencies in compact form: the non-empty
// buckets in index order. Merge combines them (a window from its seconds).
type Counts struct {
	buckets  []bucket
	n        uint64
	sum      time.Duration
	min, max time.Duration
}

func (c *Counts) add(d time.Duration) {
	if c.n == 0 || d < c.min {
		c.min = d
	}
	if d > c.max {
		c.max = d
	}
	c.n++
	c.sum += d
}

// N is how many latencies c holds.
func (c Counts) N() uint64 { return c.n }

// Max is the largest latency (exact), 0 when empty.
func (c Counts) Max() time.Duration { return c.max }

// Min is the smallest latency (exact), 0 when empty.
func (c Counts) Min() time.Duration { return c.min }

// Mean is the arithmetic mean (exact), 0 when empty.
func (c Counts) Mean() time.Duration {
	if c.n == 0 {
		return 0
	}
	return c.sum / time.Duration(c.n)
}

// Rank is the 1-based nearest rank of quantile q among n values.
func Rank(q float64, n uint64) uint64 {
	if n == 0 {
		return 0
	}
	r := uint64(math.Ceil(q*float64(n) - 1e-9))
	return min(max(r, 1), n)
}

// Quantile is q's latency (0 ≤ q ≤ 1), within ErrorBound of the exact
// nearest-rank order statistic; 0 when empty.
func (c Counts) Quantile(q float64) time.Duration {
	if c.n == 0 {
		return 0
	}
	if q >= 1 {
		return c.max
	}
	rank := Rank(q, c.n)
	var seen uint64
	for _, b := range c.buckets {
		seen += uint64(b.n)
		if seen >= rank {
			return min(max(mid(int(b.index)), c.min), c.max)
		}
	}
	return c.max
}

// Merge returns the union of a and b.
func Merge(a, b Counts) Counts {
	switch {
	case b.n == 0:
		return a
	case a.n == 0:
		return b
	}
	out := Counts{n: a.n + b.n, sum: a.sum + b.sum, min: min(a.min, b.min), max: max(a.max, b.max)}
	out.buckets = make([]bucket, 0, len(a.buckets)+len(b.buckets))
	i, j := 0, 0
	for i < len(a.buckets) || j < len(b.buckets) {
		switch {
		case j == len(b.buckets) || i < len(a.buckets) && a.buckets[i].index < b.buckets[j].index:
			out.buckets = append(out.buckets, a.buckets[i])
			i++
		case i == len(a.buckets) || b.buckets[j].index < a.buckets[i].index:
			out.buckets = append(out.buckets, b.buckets[j])
			j++
		default:
			out.buckets = append(out.buckets, bucket{index: a.buckets[i].index, n: a.buckets[i].n + b.buckets[j].n})
			i++
			j++
		}
	}
	return out
}

// MergeAll merges every Counts of cs.
func MergeAll(cs ...Counts) Counts {
	var out Counts
	for _, c := range cs {
		out = Merge(out, c)
	}
	return out
}

// Exact is the nearest-rank quantile of a plain list of latencies (sorted
// in place): the reference the histogram is checked against.
func Exact(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[Rank(q, uint64(len(ds)))-1]
}

// Summary is the figures a report quotes for a set of latencies.
type Summary struct {
	N    uint64        `json:"n"`
	Mean time.Duration `json:"mean_ns"`
	P50  time.Duration `json:"p50_ns"`
	P90  time.Duration `json:"p90_ns"`
	P99  time.Duration `json:"p99_ns"`
	P999 time.Duration `json:"p999_ns"`
	Max  time.Duration `json:"max_ns"`
}

// Summarize computes c's Summary.
func (c Counts) Summarize() Summary {
	return Summary{N: c.n, Mean: c.Mean(), P50: c.Quantile(0.5), P90: c.Quantile(0.9),
		P99: c.Quantile(0.99), P999: c.Quantile(0.999), Max: c.max}
}
