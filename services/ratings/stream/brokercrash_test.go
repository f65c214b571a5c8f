package stream

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ratingslab/lab/services/lib/kafkaio/kafkatest"
	"github.com/ratingslab/lab/services/lib/servetest"
)

// The kills-under-load torture's case: the broker is killed (kill -9) while
// a changelog transaction is open, and comes back. The next owner restores
// the changelog — it once waited for the end of a partition whose last
// records belong to that transaction, which the restarted broker counts as
// aborted, until its bound, every generation — and an owner after it
// restores exactly what the one before committed (the broker wrote the
// abort marker the crash left out, so the next transaction of the same
// transactional id is not read as aborted).
func TestEffectivelyOnceRestoresAfterTheBrokerDiedMidChangelogTransaction(t *testing.T) {
	t.Parallel()
	b := kafkatest.StartDurable(t)
	l := &lab{t: t, k: newClient(t, b.Addr)}
	l.movies(10)
	g := newLedger()
	l.ratings(g, 1500, 10, 41)
	session := func(c *Config) {
		c.MaxBatch = 100
		// The lab broker's group session bounds (kfake's defaults).
		c.SessionTimeout, c.RebalanceTimeout = 6*time.Second, 6*time.Second
	}

	var crashed atomic.Bool
	a := l.startWith(t.TempDir(), func(p *Processor, crash context.CancelFunc) {
		p.testHookBeforeEnd = func() bool {
			if _, n, _ := committedTotal(p); n > 500 && crashed.CompareAndSwap(false, true) {
				b.Crash(t) // the broker dies with the transaction open...
				crash()    // ...and the instance with it
				return true
			}
			return false
		}
	}, session)
	servetest.WaitFor(t, 30*time.Second, "the crash mid-transaction", func() (bool, string) { return crashed.Load(), "" })
	a.stop(t)
	b.Start(t)

	l.ratings(g, 300, 10, 42)
	next := l.start(t.TempDir(), session)
	servetest.WaitFor(t, 40*time.Second, "the next owner's state to match", func() (bool, string) { return stateMatches(g, next.p) })
	servetest.WaitFor(t, 30*time.Second, "the changelog to match", func() (bool, string) { return l.changelogMatches(g) })
	next.stop(t)

	l.ratings(g, 300, 10, 43)
	after := l.start(t.TempDir(), session)
	servetest.WaitFor(t, 40*time.Second, "the owner after it to match", func() (bool, string) { return stateMatches(g, after.p) })
	servetest.WaitFor(t, 30*time.Second, "its restore to be reported", func() (bool, string) { return after.p.LastRestore() != nil, "" })
	if r := after.p.LastRestore(); r.ChangelogRecords == 0 {
		t.Errorf("restore %+v: want the changelog read", r)
	}
	servetest.WaitFor(t, 30*time.Second, "rated-movies to match", func() (bool, string) { return l.viewMatches(g) })
}

// A restore that cannot initialise its changelog writers ends with its
// bound and names what it waited for; the next attempt's health shows it.
func TestAChangelogRestoreThatCannotFinishSaysWhatItWaitedFor(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.broker.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.InitProducerID}, Err: kerr.CoordinatorLoadInProgress, Count: -1})
	p, err := New(Config{Cluster: l.k, DataDir: t.TempDir(), Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _, err = p.restoreChangelog(ctx, []int{2}, nil)
	if err == nil || !strings.Contains(err.Error(), "InitProducerID of transactional id ratings-stream-changelog-2") {
		t.Fatalf("restore error %v: want it to name the writer's InitProducerID", err)
	}
	p.restoreFailed.Store(&err)
	gctx, gcancel := context.WithCancel(context.Background())
	gcancel() // the generation is over at once: only the health it set first matters
	if _, _, err := p.restoreBounded(gctx, []int{2}, nil); err == nil {
		t.Fatal("restoreBounded succeeded in an ended generation")
	}
	herr := p.health.err()
	for _, want := range []string{"restoring partitions [2]", "the previous attempt failed", "InitProducerID of transactional id ratings-stream-changelog-2"} {
		if herr == nil || !strings.Contains(herr.Error(), want) {
			t.Errorf("health %v: want it to say %q", herr, want)
		}
	}
}
