package stream

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
)

// An emission of rated-movies that gives up (every attempt refused, as
// while a real cluster elects a new leader for the partition) is repaired
// by a new generation's re-emit from the database at once — not at the next
// ratings batch, which never comes once the load has stopped: the view
// (webserver-stream) then stayed behind the store indefinitely, and the
// next run's baseline read that stale view.
func TestAnEmissionThatGivesUpIsReemittedWithoutAnotherRating(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	l.movies(10)
	g := newLedger()
	l.ratings(g, 300, 10, 21)
	r := l.start(t.TempDir())
	servetest.WaitFor(t, 30*time.Second, "rated-movies to match the ledger", func() (bool, string) { return l.viewMatches(g) })

	refused := l.broker.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: model.TopicRatedMovies,
		Err: kerr.NotEnoughReplicas, Count: -1})
	l.ratings(g, 100, 10, 22) // the last ratings: nothing is produced after them
	servetest.WaitFor(t, 30*time.Second, "the state to count the last ratings", func() (bool, string) { return stateMatches(g, r.p) })
	servetest.WaitFor(t, 60*time.Second, "the emission to give up", func() (bool, string) {
		return !r.p.emitting.Load(), "still retrying"
	})
	refused.Remove()
	servetest.WaitFor(t, 30*time.Second, "rated-movies to match the ledger with no rating after the failure", func() (bool, string) {
		return l.viewMatches(g)
	})
}
