package stream

import "hash/maphash"

// window remembers the request ids of the last `size` ratings counted on one
// partition, to recognise a rating produced twice: kafka-go's producer is not
// idempotent, so a produce retried after a lost acknowledgement appends the
// same event again, and a client may resend after a 503.
//
// It holds 64-bit hashes, not the ids (a few MB per partition instead of tens
// of MB and nothing for the GC to scan); two different ids colliding within
// one window has a probability of about size²/2⁶⁵. The window is not stored:
// after a restart it is rebuilt by re-reading the `size` records before the
// resume offset — the log is the record of what was counted.
type window struct {
	ring []uint64
	head int // next slot to write
	full bool
	set  map[uint64]int32 // hash → how many slots hold it
}

var windowSeed = maphash.MakeSeed()

func newWindow(size int) *window {
	if size < 1 {
		size = 1
	}
	return &window{ring: make([]uint64, size), set: make(map[uint64]int32, size)}
}

func hashID(id string) uint64 { return maphash.String(windowSeed, id) }

// seen reports whether h is in the window.
func (w *window) seen(h uint64) bool { return w.set[h] > 0 }

// add remembers h, forgetting the oldest entry when the window is full.
func (w *window) add(h uint64) {
	if w.full {
		old := w.ring[w.head]
		if n := w.set[old]; n <= 1 {
			delete(w.set, old)
		} else {
			w.set[old] = n - 1
		}
	}
	w.ring[w.head] = h
	w.set[h]++
	w.head++
	if w.head == len(w.ring) {
		w.head = 0
		w.full = true
	}
}
