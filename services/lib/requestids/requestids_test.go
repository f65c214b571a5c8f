package requestids_test

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/ratingslab/lab/services/lib/requestids"
)

// rec is one ratings record as a consumer sees it.
type rec struct {
	id     string
	fp     uint64
	offset int64
	timeMs int64
}

func count(p *requestids.Partition, r rec) (requestids.Verdict, requestids.Entry) {
	return p.Count(requestids.Hash(r.id), r.fp, r.offset, r.timeMs)
}

func TestARequestIDIsCountedOnceWithinTheRetentionWhateverLiesBetween(t *testing.T) {
	p := requestids.NewPartition(time.Minute, nil)
	fp := requestids.Fingerprint(42, 75, 7)
	if v, _ := count(p, rec{id: "a", fp: fp, offset: 0, timeMs: 1000}); v != requestids.New {
		t.Fatalf("first use: %v, want New", v)
	}
	// 200 000 other ratings in between: no count-based window forgets it.
	for i := range 200_000 {
		if v, _ := count(p, rec{id: fmt.Sprint("other-", i), fp: fp, offset: int64(1 + i), timeMs: 1000 + int64(i)/10}); v != requestids.New {
			t.Fatalf("other-%d: %v", i, v)
		}
	}
	v, first := count(p, rec{id: "a", fp: fp, offset: 200_001, timeMs: 30_000})
	if v != requestids.Repeat || first.Offset != 0 {
		t.Fatalf("the same request id and payload again: %v (first at offset %d), want Repeat of offset 0", v, first.Offset)
	}
	v, first = count(p, rec{id: "a", fp: requestids.Fingerprint(43, 75, 7), offset: 200_002, timeMs: 30_000})
	if v != requestids.Conflict || first.Offset != 0 {
		t.Fatalf("the same request id for another movie: %v (first at offset %d), want Conflict with offset 0", v, first.Offset)
	}
}

func TestAnIDOlderThanTheRetentionInTheLogsClockIsForgotten(t *testing.T) {
	p := requestids.NewPartition(time.Minute, nil)
	fp := requestids.Fingerprint(1, 50, 0)
	count(p, rec{id: "old", fp: fp, offset: 0, timeMs: 0})
	count(p, rec{id: "mid", fp: fp, offset: 1, timeMs: 30_000})
	// The clock is the records' timestamps: at 60s "old" is still kept...
	if v, _ := count(p, rec{id: "old", fp: fp, offset: 2, timeMs: 60_000}); v != requestids.Repeat {
		t.Fatalf("at exactly the retention: %v, want Repeat", v)
	}
	// ...a millisecond later it is not, while "mid" is.
	if v, _ := count(p, rec{id: "old", fp: fp, offset: 3, timeMs: 60_001}); v != requestids.New {
		t.Fatalf("past the retention: %v, want New", v)
	}
	if v, _ := count(p, rec{id: "mid", fp: fp, offset: 4, timeMs: 60_001}); v != requestids.Repeat {
		t.Fatalf("mid within the retention: %v, want Repeat", v)
	}
	// A record stamped in the past (a producer with a slow clock, an
	// imported record) takes the newest time: the clock never goes back.
	_, e := count(p, rec{id: "late", fp: fp, offset: 5, timeMs: 10})
	if e.Time != 60_001 {
		t.Fatalf("a record stamped before the newest is kept at %d, want 60001", e.Time)
	}
	if p.Len() != 3 { // mid, old (again), late
		t.Fatalf("keeps %d ids, want 3", p.Len())
	}
}

// A restart from what was stored (Changes applied to a store, then
// NewPartition from it) decides every later record exactly as the
// partition that never stopped: the record is filled one way.
func TestARecordRestartedFromItsStoredChangesDecidesAlike(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var log []rec
	for off := range int64(20_000) {
		id := fmt.Sprint("r-", rng.IntN(3000)) // plenty of repeats
		fp := requestids.Fingerprint(int64(rng.IntN(3)), 50, 0)
		log = append(log, rec{id: id, fp: fp, offset: off, timeMs: off * 10})
	}
	const retention = 20 * time.Second // 2000 records of the clock
	live := requestids.NewPartition(retention, nil)
	var want []requestids.Verdict
	for _, r := range log {
		v, _ := count(live, r)
		want = append(want, v)
	}

	// The same log, stopped and restarted from the store every 777 records.
	var stored []requestids.Entry
	p := requestids.NewPartition(retention, nil)
	for i, r := range log {
		if i > 0 && i%777 == 0 {
			added, forgetBelow := p.Changes()
			stored = slices.DeleteFunc(append(stored, added...), func(e requestids.Entry) bool { return e.Offset < forgetBelow })
			p = requestids.NewPartition(retention, slices.Clone(stored))
		}
		if v, _ := count(p, r); v != want[i] {
			t.Fatalf("record %d (%s at offset %d): %v after restarts, %v without", i, r.id, r.offset, v, want[i])
		}
	}
	if !slices.Equal(p.Entries(), live.Entries()) {
		t.Fatalf("kept entries differ after restarts: %d vs %d", len(p.Entries()), len(live.Entries()))
	}
	repeats := 0
	for _, v := range want {
		if v != requestids.New {
			repeats++
		}
	}
	if repeats == 0 || repeats == len(want) {
		t.Fatalf("%d repeats or conflicts of %d: the log does not exercise the record", repeats, len(want))
	}
}

func TestHashAndFingerprintAreStableAcrossProcesses(t *testing.T) {
	// Stored in SQLite and shipped to other instances: the values must
	// never depend on a per-process seed.
	if h := requestids.Hash("load-3:000017"); h != 0xd1e580a4be606651 { // FNV-1a 64, computed independently
		t.Errorf("Hash = %#x", h)
	}
	if requestids.Fingerprint(42, 75, 7) == requestids.Fingerprint(42, 75, 8) ||
		requestids.Fingerprint(42, 75, 7) == requestids.Fingerprint(43, 75, 7) ||
		requestids.Fingerprint(42, 75, 7) == requestids.Fingerprint(42, 76, 7) {
		t.Error("payloads that differ in one field share a fingerprint")
	}
}

// BenchmarkCount is the cost per rating of the record on the processor's
// hot path (hashes included), with a million ids kept.
func BenchmarkCount(b *testing.B) {
	p := requestids.NewPartition(time.Hour, nil)
	ids := make([]string, 1_000_000)
	for i := range ids {
		ids[i] = fmt.Sprintf("load-%d:%06d", i%7, i)
	}
	fp := requestids.Fingerprint(1, 50, 0)
	b.ResetTimer()
	for i := range b.N {
		p.Count(requestids.Hash(ids[i%len(ids)]), fp, int64(i), int64(i)/100)
	}
}

func TestEntriesRoundTripThroughTheirEncoding(t *testing.T) {
	in := []requestids.Entry{
		{ID: requestids.Hash("a"), Fingerprint: requestids.Fingerprint(1, 10, 0), Time: 1_700_000_000_000, Offset: 0},
		{ID: 1<<64 - 1, Fingerprint: 1 << 63, Time: -1, Offset: 1<<62 + 5},
	}
	b := requestids.AppendEntries(nil, in)
	if len(b) != 64 {
		t.Fatalf("%d bytes for 2 entries, want 64", len(b))
	}
	out, err := requestids.DecodeEntries(nil, b)
	if err != nil || !slices.Equal(out, in) {
		t.Fatalf("decoded %+v, %v; want %+v", out, err, in)
	}
	if _, err := requestids.DecodeEntries(nil, b[:40]); err == nil {
		t.Fatal("a truncated block decoded without an error")
	}
}

// BenchmarkMemoryPerID reports the heap a kept request id costs
// (bytes/id), with a million of them kept:
// go test ./services/lib/requestids -run '^$' -bench MemoryPerID -benchtime 1x
func BenchmarkMemoryPerID(b *testing.B) {
	const n = 1_000_000
	ids := make([]uint64, n)
	for i := range ids {
		ids[i] = requestids.Hash(fmt.Sprint("id-", i))
	}
	for range b.N {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		p := requestids.NewPartition(time.Hour, nil)
		for i, id := range ids {
			p.Count(id, 1, int64(i), int64(i))
		}
		p.Changes()
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/id")
		runtime.KeepAlive(p)
	}
}
