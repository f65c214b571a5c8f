package stream

import (
	"slices"
	"sync"
	"time"
)

// Restore time: from a partition's assignment until the state includes
// every rating that was in the log when it was assigned. The same clock for
// every way of getting there — a restore from the changelog and its tail, a
// resume from the instance's own database, a replay from the start of the
// log — so the three compare fairly. Only partitions the instance did not
// own in its previous generation are measured (kafka-go's group revokes and
// reassigns every partition at each rebalance; one it keeps costs nothing).

// Restore is the last completed restore of taken-over partitions (GET
// /state, lab status).
type Restore struct {
	At         time.Time      `json:"at"`
	Partitions []int          `json:"partitions"`
	From       map[int]string `json:"from"` // partition → standby, changelog, local or start
	// Seconds until the last of them caught up.
	Seconds          float64 `json:"seconds"`
	ChangelogRecords int     `json:"changelog_records"` // read from the changelog and the request-id topic
	// StandbyRecords is how many of the changelog records were read on top
	// of standby copies (the tails after their positions; --standby-replicas).
	StandbyRecords int `json:"standby_changelog_records,omitempty"`
	// RatingsReplayed is how many ratings were read to catch up (the tail
	// after the restored position).
	RatingsReplayed int64 `json:"ratings_replayed"`
}

// restoreClock measures one generation's taken-over partitions.
type restoreClock struct {
	started  time.Time
	target   map[int]int64 // partition → end of the log at assignment; removed once reached
	summary  Restore
	reported bool
}

// newRestoreClock starts measuring the partitions in taken; ends are the
// partitions' end offsets at assignment, start the offsets consumption
// starts from, from where the state came from.
func newRestoreClock(started time.Time, taken []int, ends, start map[int]int64, from map[int]string, changelogRecords int) *restoreClock {
	c := &restoreClock{started: started, target: map[int]int64{},
		summary: Restore{Partitions: slices.Clone(taken), From: map[int]string{}, ChangelogRecords: changelogRecords}}
	for _, id := range taken {
		c.target[id] = ends[id]
		c.summary.From[id] = from[id]
		c.summary.RatingsReplayed += max(0, ends[id]-start[id])
	}
	return c
}

// reached notes the partitions' committed next offsets; it returns the
// partitions that just caught up, with the time they took.
func (c *restoreClock) reached(next func(part int) int64, now time.Time) map[int]time.Duration {
	if c == nil || len(c.target) == 0 {
		return nil
	}
	var done map[int]time.Duration
	for id, end := range c.target {
		if next(id) >= end {
			if done == nil {
				done = map[int]time.Duration{}
			}
			done[id] = now.Sub(c.started)
			delete(c.target, id)
		}
	}
	return done
}

// finished is the summary once every partition caught up.
func (c *restoreClock) finished(now time.Time) (Restore, bool) {
	if c == nil || len(c.target) > 0 || len(c.summary.Partitions) == 0 {
		return Restore{}, false
	}
	s := c.summary
	s.At = c.started
	s.Seconds = now.Sub(c.started).Seconds()
	return s, true
}

// lastRestore keeps the latest summary.
type lastRestore struct {
	mu sync.Mutex
	r  *Restore
}

func (l *lastRestore) set(r Restore) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.r = &r
}

// Get is the latest completed restore, nil before the first.
func (l *lastRestore) Get() *Restore {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.r == nil {
		return nil
	}
	r := *l.r
	return &r
}
