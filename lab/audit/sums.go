package audit

// Which sums can k ratings chosen from a list have? The audit asks this to
// tell "one rating lost" from "two lost and an ambiguous one applied": with
// counts alone both can give the same number, with sums often not. Ratings
// are integers of tenths (10..100), so the achievable sums of exactly k of
// them form a small set that a bitset knapsack computes exactly.

// workBudget bounds the bit operations spent on one movie; beyond it the
// audit falls back to the min/max bounds (necessary, not sufficient).
const workBudget = 20_000_000

// bitset is a set of small non-negative integers.
type bitset []uint64

func newBitset(n int) bitset { return make(bitset, n/64+1) }

func (b bitset) has(i int64) bool {
	if i < 0 || int(i/64) >= len(b) {
		return false
	}
	return b[i/64]&(1<<(uint(i)%64)) != 0
}

func (b bitset) set(i int64) { b[i/64] |= 1 << (uint(i) % 64) }

// orShifted sets dst |= src << v.
func (b bitset) orShifted(src bitset, v int) {
	words, bits := v/64, uint(v%64)
	for i := len(b) - 1; i >= words; i-- {
		w := src[i-words] << bits
		if bits != 0 && i-words-1 >= 0 {
			w |= src[i-words-1] >> (64 - bits)
		}
		b[i] |= w
	}
}

// each calls fn for every member in ascending order until fn returns false.
func (b bitset) each(fn func(int64) bool) bool {
	for wi, w := range b {
		for w != 0 {
			tz := trailingZeros(w)
			if !fn(int64(wi*64 + tz)) {
				return false
			}
			w &= w - 1
		}
	}
	return true
}

func trailingZeros(w uint64) int {
	n := 0
	for w&1 == 0 {
		w >>= 1
		n++
	}
	return n
}

// kSums returns, for k = 0..kmax, the set of sums of exactly k elements of
// list, or nil when that would cost more than the budget (or a value is out
// of the rating range, which the ledger never holds).
func kSums(list []int64, kmax int) []bitset {
	kmax = min(kmax, len(list))
	var vmax int64
	for _, v := range list {
		if v < 0 || v > 1000 {
			return nil
		}
		vmax = max(vmax, v)
	}
	size := int(vmax)*kmax + 1
	if len(list)*(kmax+1)*(size/64+1) > workBudget {
		return nil
	}
	levels := make([]bitset, kmax+1)
	for j := range levels {
		levels[j] = newBitset(size)
	}
	levels[0].set(0)
	for i, v := range list {
		for j := min(i+1, kmax); j >= 1; j-- {
			levels[j].orShifted(levels[j-1], int(v))
		}
	}
	return levels
}

// repeatSums returns, for d = 0..dmax, the sums of d values drawn from
// values with repetition (what d duplicates can add), or nil when too costly.
func repeatSums(values []int64, dmax int) []bitset {
	var vmax int64
	for _, v := range values {
		if v < 0 || v > 1000 {
			return nil
		}
		vmax = max(vmax, v)
	}
	size := int(vmax)*dmax + 1
	if dmax*len(values)*(size/64+1) > workBudget {
		return nil
	}
	levels := make([]bitset, dmax+1)
	levels[0] = newBitset(size)
	levels[0].set(0)
	for d := 1; d <= dmax; d++ {
		levels[d] = newBitset(size)
		for _, v := range values {
			levels[d].orShifted(levels[d-1], int(v))
		}
	}
	return levels
}
