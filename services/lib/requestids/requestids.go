// Package requestids is the record of the request ids one partition of
// `ratings` has counted: how a consumer counts a rating once per request id
// (docs/api.md, "Idempotency").
//
// kafka-go's producer is not idempotent: a produce retried after a lost
// acknowledgement appends the rating twice, and a client retrying a 504
// (`outcome: unknown`) makes the webserver produce it again. Every rating of
// a request id lands on the same partition (the key is the movie id, and the
// webserver refuses the id with another payload), so a record per partition
// is enough.
//
// The record is kept by time, not by count, in the log's own clock: an id
// stays in it for Retention after its record's timestamp, measured against
// the newest timestamp counted on the partition. Decisions therefore depend
// on the log alone — the live processor, a restart from the stored record
// and a rebuild from offset 0 all drop exactly the same repeats. A
// Partition is filled one way only: Count, record by record, in offset
// order; a restart loads what the last commit stored (Entries), it does not
// re-read the log.
package requestids

import (
	"encoding/binary"
	"fmt"
	"time"
)

// DefaultRetention covers the retries that can repeat a rating: kafka-go's
// background retries of a timed-out produce (attempts × write timeout +
// backoffs: about a minute) and a client retrying a 504 with the same
// request_id, which webserver-stream accepts for its --retry-horizon (5m by
// default) after the first attempt.
const DefaultRetention = 15 * time.Minute

// Entry is one counted rating: its request id and payload as hashes, the
// timestamp it is kept by, and where it was counted.
type Entry struct {
	ID          uint64 // Hash of the request id
	Fingerprint uint64 // Fingerprint of the rating it named
	Time        int64  // Unix milliseconds: the record's timestamp, raised to the newest one counted before it
	Offset      int64  // the record's offset in its partition
}

// Hash is the 64-bit FNV-1a hash of a request id, the key of the record.
// Two ids with the same hash would be taken for one; among a million ids
// kept at once the chance of that is about 3 in 100 million.
func Hash(requestID string) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(requestID); i++ {
		h = (h ^ uint64(requestID[i])) * fnvPrime
	}
	return h
}

// Fingerprint identifies a rating's payload: the same movie, value and
// user give the same fingerprint (FNV-1a over the three as little-endian
// 64-bit integers).
func Fingerprint(movieID, tenths, userID int64) uint64 {
	h := uint64(fnvOffset)
	for _, v := range [3]int64{movieID, tenths, userID} {
		for j := range 8 {
			h = (h ^ uint64(byte(uint64(v)>>(8*j)))) * fnvPrime
		}
	}
	return h
}

// FNV-1a 64 (hash/fnv), inlined: it runs once per rating and must not allocate.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// Verdict is what the record says about a rating.
type Verdict int

const (
	// New: count it (Count has added it to the record).
	New Verdict = iota
	// Repeat: the same request id with the same payload was counted at
	// Entry.Offset: drop it.
	Repeat
	// Conflict: the same request id named another rating, counted at
	// Entry.Offset: do not count it (dead-letter it).
	Conflict
)

// Partition is the record of one partition.
type Partition struct {
	retention int64 // milliseconds
	newest    int64 // newest Entry.Time counted
	// queue holds the entries in offset (and so Time) order; queue[head:]
	// are kept. byID maps an id to its entry's sequence number: its index
	// in queue plus dropped, the entries compacted away before it (an index
	// rather than the entry halves the memory per id).
	queue   []Entry
	head    int
	dropped int64
	byID    map[uint64]int64
	added   []Entry // since the last Changes
	// reportedFloor is the forgetBelow Changes reported last.
	reportedFloor int64
}

// NewPartition starts a partition's record from the entries a previous
// commit stored (in offset order; nil for a partition never counted).
func NewPartition(retention time.Duration, stored []Entry) *Partition {
	if retention <= 0 {
		retention = DefaultRetention
	}
	p := &Partition{retention: retention.Milliseconds(), byID: make(map[uint64]int64, len(stored))}
	for _, e := range stored {
		p.keep(e)
	}
	if len(stored) > 0 {
		p.reportedFloor = stored[0].Offset
	}
	return p
}

func (p *Partition) keep(e Entry) {
	p.byID[e.ID] = p.dropped + int64(len(p.queue))
	p.queue = append(p.queue, e)
	p.newest = max(p.newest, e.Time)
}

// Count decides about the rating of request id hash id with payload
// fingerprint fp, at offset with timestamp t (Unix milliseconds), and
// records it when it is New. Calls must come in offset order.
func (p *Partition) Count(id, fp uint64, offset, t int64) (Verdict, Entry) {
	t = max(t, p.newest) // the log's clock never goes back
	p.prune(t)
	if seq, ok := p.byID[id]; ok {
		first := p.queue[seq-p.dropped]
		if first.Fingerprint == fp {
			return Repeat, first
		}
		return Conflict, first
	}
	e := Entry{ID: id, Fingerprint: fp, Time: t, Offset: offset}
	p.keep(e)
	p.added = append(p.added, e)
	return New, e
}

// prune forgets the entries older than the retention at time now. The
// queue is in time order (Count raises every time to the newest before it),
// so they are all at its front.
func (p *Partition) prune(now int64) {
	for p.head < len(p.queue) && p.queue[p.head].Time < now-p.retention {
		e := p.queue[p.head]
		if seq, ok := p.byID[e.ID]; ok && seq == p.dropped+int64(p.head) {
			delete(p.byID, e.ID)
		}
		p.head++
	}
	if p.head > 1024 && p.head > len(p.queue)/2 {
		p.dropped += int64(p.head)
		p.queue = append(p.queue[:0], p.queue[p.head:]...)
		p.head = 0
	}
}

// Changes returns what to store since the last call: the entries added,
// and the offset below which stored entries are now forgotten (every entry
// at a lower offset has left the record), or -1 when that did not move.
func (p *Partition) Changes() (added []Entry, forgetBelow int64) {
	added, p.added = p.added, nil
	floor := p.reportedFloor
	if p.head < len(p.queue) {
		floor = p.queue[p.head].Offset
	} else if n := len(p.queue); n > 0 {
		floor = p.queue[n-1].Offset + 1
	}
	if floor == p.reportedFloor {
		return added, -1
	}
	p.reportedFloor = floor
	return added, floor
}

// Entries are the kept entries in offset order: what a store or a
// changelog holds to start the record again elsewhere.
func (p *Partition) Entries() []Entry {
	return append([]Entry(nil), p.queue[p.head:]...)
}

// Len is how many request ids the record keeps.
func (p *Partition) Len() int { return len(p.byID) }

// entrySize is the size of one encoded Entry.
const entrySize = 32

// AppendEntries encodes entries for a store (32 bytes each, little-endian):
// a batch's entries go in as one value rather than one row each, which
// would cost the processor half its throughput.
func AppendEntries(b []byte, entries []Entry) []byte {
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint64(b, e.ID)
		b = binary.LittleEndian.AppendUint64(b, e.Fingerprint)
		b = binary.LittleEndian.AppendUint64(b, uint64(e.Time))
		b = binary.LittleEndian.AppendUint64(b, uint64(e.Offset))
	}
	return b
}

// DecodeEntries appends the entries encoded in b (AppendEntries) to dst.
func DecodeEntries(dst []Entry, b []byte) ([]Entry, error) {
	if len(b)%entrySize != 0 {
		return dst, fmt.Errorf("request ids: %d bytes is not a whole number of %d-byte entries", len(b), entrySize)
	}
	for ; len(b) > 0; b = b[entrySize:] {
		dst = append(dst, Entry{
			ID:          binary.LittleEndian.Uint64(b),
			Fingerprint: binary.LittleEndian.Uint64(b[8:]),
			Time:        int64(binary.LittleEndian.Uint64(b[16:])),
			Offset:      int64(binary.LittleEndian.Uint64(b[24:])),
		})
	}
	return dst, nil
}
