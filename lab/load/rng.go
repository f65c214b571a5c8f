package load

// The request sequence must be identical for every variant and reproducible
// from the seed alone, also by the k6 scripts (loadtests/lib/generator.js
// implements the same functions). So instead of one shared random stream,
// request i gets its own tiny stream seeded from (seed, i): any request can be
// generated independently, in any order, from any goroutine, in Go or in JS.
// The functions are 32-bit on purpose: JavaScript has exact 32-bit integer
// arithmetic (Math.imul, >>>), not 64-bit.

// fmix32 is MurmurHash3's finalizer: a bijective 32-bit mix.
func fmix32(h uint32) uint32 {
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// draws is mulberry32, a small fast generator with a 32-bit state.
type draws struct{ state uint32 }

// requestDraws returns the stream of request number i of the sequence seeded
// with seed.
func requestDraws(seed uint32, i uint32) draws {
	return draws{state: fmix32(seed + i*0x9E3779B9)}
}

func (d *draws) next() uint32 {
	d.state += 0x6D2B79F5
	t := d.state
	t = (t ^ t>>15) * (t | 1)
	t = (t + (t^t>>7)*(t|61)) ^ t
	return t ^ t>>14
}

// float returns a float64 in [0, 1) with 32 bits of randomness.
func (d *draws) float() float64 { return float64(d.next()) / 4294967296.0 }
