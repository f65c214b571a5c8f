package stream

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/kafkatest"
	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
)

// Every test of this package starts its own broker (newLab, kafkatest.Start
// or StartDurable, each on a port of its own) and keeps its data in its own
// t.TempDir(), registry and test hooks, so the tests run in parallel
// (t.Parallel): they mostly wait on the broker, on group rebalances and on
// fetches, not on the CPU. make test raises -parallel for the unit suites.

// lab is a broker with the lab's topics and a client to it.
type lab struct {
	t      testing.TB
	broker *kafkatest.Broker
	k      *kafkaio.Cluster
}

func newLab(t testing.TB) *lab {
	t.Helper()
	b := kafkatest.Start(t, kafkatest.LabTopics, kfake.GroupMinSessionTimeout(time.Second))
	return &lab{t: t, broker: b, k: newClient(t, b.Addr)}
}

// newClient connects with kafkaio's default dial timeout, as the parts do:
// it also bounds the connection's handshake, and 1 s (what the tests used)
// timed a fixture write out once with this package's tests running in
// parallel under -race at load average 20.
func newClient(t testing.TB, addr string) *kafkaio.Cluster {
	t.Helper()
	return kafkatest.Client(t, kafkaio.Config{Brokers: []string{addr}}, testLog(t))
}

func testLog(t testing.TB) *slog.Logger {
	if os.Getenv("STREAM_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// movies publishes movies 1..n to the movies topic, as movies-connect would.
func (l *lab) movies(n int) {
	l.t.Helper()
	w := l.k.Writer(model.TopicMovies, kafkaio.WriterOptions{})
	defer w.Close()
	var msgs []kafka.Message
	for id := int64(1); id <= int64(n); id++ {
		v, _ := json.Marshal(model.Movie{ID: id, Title: fmt.Sprintf("Movie %d", id), ReleaseYear: 1990 + int(id%30), Version: 1})
		msgs = append(msgs, kafka.Message{Key: []byte(strconv.FormatInt(id, 10)), Value: v})
	}
	if err := w.Write(servetest.Context(l.t, 30*time.Second), msgs...); err != nil {
		l.t.Fatal(err)
	}
}

// ledger is what the test produced, to compare the processor's state with.
type ledger struct {
	mu     sync.Mutex
	counts map[int64]model.CountAndSum
}

func newLedger() *ledger { return &ledger{counts: map[int64]model.CountAndSum{}} }

func (g *ledger) add(ev model.RatingEvent) {
	g.mu.Lock()
	defer g.mu.Unlock()
	cs := g.counts[ev.MovieID]
	cs.Count++
	cs.SumTenth += ev.Tenths
	g.counts[ev.MovieID] = cs
}

func (g *ledger) total() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	var n int64
	for _, cs := range g.counts {
		n += cs.Count
	}
	return n
}

// ratings produces n valid ratings over movies 1..movies, recorded in g.
func (l *lab) ratings(g *ledger, n, movies int, seed uint64) []model.RatingEvent {
	l.t.Helper()
	return l.ratingsAt(g, n, movies, seed, time.Time{})
}

// ratingsAt is ratings with every rating and its record stamped at (the
// zero time: now, as the writer stamps them).
func (l *lab) ratingsAt(g *ledger, n, movies int, seed uint64, at time.Time) []model.RatingEvent {
	l.t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	w := l.k.Writer(model.TopicRatings, kafkaio.WriterOptions{BatchSize: 5000})
	defer w.Close()
	evs := make([]model.RatingEvent, 0, n)
	msgs := make([]kafka.Message, 0, n)
	for i := range n {
		ev := model.RatingEvent{
			RequestID: fmt.Sprintf("req-%d-%d", seed, i),
			MovieID:   1 + rng.Int64N(int64(movies)),
			Tenths:    10 + rng.Int64N(91),
			UserID:    rng.Int64N(1000),
			EventTime: cmp.Or(at, time.Now()),
		}
		m := ratingRecord(ev)
		m.Time = at
		msgs = append(msgs, m)
		evs = append(evs, ev)
		g.add(ev)
	}
	for len(msgs) > 0 {
		chunk := msgs[:min(len(msgs), 20000)]
		if err := w.Write(servetest.Context(l.t, 60*time.Second), chunk...); err != nil {
			l.t.Fatal(err)
		}
		msgs = msgs[len(chunk):]
	}
	return evs
}

// produce writes raw records to ratings (for duplicates and poison).
func (l *lab) produce(msgs ...kafka.Message) {
	l.t.Helper()
	w := l.k.Writer(model.TopicRatings, kafkaio.WriterOptions{})
	defer w.Close()
	if err := w.Write(servetest.Context(l.t, 30*time.Second), msgs...); err != nil {
		l.t.Fatal(err)
	}
}

func ratingRecord(ev model.RatingEvent) kafka.Message {
	v, _ := ev.MarshalJSON()
	return kafka.Message{Key: ev.Key(), Value: v}
}

// running is a processor running in the background.
type running struct {
	p      *Processor
	cancel context.CancelFunc
	done   chan error
}

type procOption func(*Config)

func (l *lab) start(dir string, opts ...procOption) *running {
	l.t.Helper()
	return l.startWith(dir, nil, opts...)
}

// startWith lets before install test hooks; crash cancels this run, so a
// hook can end the process without reaching for the *running it returns.
func (l *lab) startWith(dir string, before func(p *Processor, crash context.CancelFunc), opts ...procOption) *running {
	l.t.Helper()
	cfg := Config{Cluster: l.k, DataDir: dir, Log: testLog(l.t), Restore: RestoreChangelog,
		HeartbeatInterval: 200 * time.Millisecond, SessionTimeout: 2 * time.Second, RebalanceTimeout: 3 * time.Second,
		TopicWait: kafkaio.TopicWait{Timeout: 10 * time.Second}}
	for _, o := range opts {
		o(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		l.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if before != nil {
		before(p, cancel)
	}
	r := &running{p: p, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- p.Run(ctx) }()
	l.t.Cleanup(func() { r.stop(l.t) })
	return r
}

// stop cancels Run, waits for it (bounded) and closes the database.
func (r *running) stop(t testing.TB) error {
	if r.done == nil {
		return nil
	}
	r.cancel()
	var err error
	select {
	case err = <-r.done:
	case <-time.After(30 * time.Second):
		// Where it hangs is the finding: every goroutine's stack.
		var stacks strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&stacks, 2)
		t.Errorf("processor did not stop within 30s; goroutines:\n%s", stacks.String())
	}
	r.done = nil
	r.p.Close()
	return err
}

// committedTotal sums counts in a processor's database.
func committedTotal(p *Processor) (map[int64]model.CountAndSum, int64, error) {
	rows, err := p.store.states(context.Background(), 0)
	if err != nil {
		return nil, 0, err
	}
	out := map[int64]model.CountAndSum{}
	var n int64
	for _, r := range rows {
		out[r.MovieID] = model.CountAndSum{Count: r.Count, SumTenth: r.SumTenths}
		n += r.Count
	}
	return out, n, nil
}

// view reads rated-movies the way a consumer must: per movie the update
// with the highest source offset.
func (l *lab) view() (map[int64]model.RatedMovieEvent, error) {
	p := &Processor{k: l.k}
	return p.readRatedMovies(servetest.Context(l.t, 30*time.Second))
}

// viewMatches compares the rated-movies view with the ledger.
func (l *lab) viewMatches(g *ledger) (bool, string) {
	v, err := l.view()
	if err != nil {
		return false, err.Error()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for id, want := range g.counts {
		got, ok := v[id]
		if !ok {
			return false, fmt.Sprintf("movie %d missing from rated-movies", id)
		}
		if got.Count != want.Count || got.SumTenths != want.SumTenth {
			return false, fmt.Sprintf("movie %d: rated-movies has count %d sum %d, want %d and %d", id, got.Count, got.SumTenths, want.Count, want.SumTenth)
		}
	}
	return true, ""
}

// stateMatches compares a processor's committed state with the ledger.
func stateMatches(g *ledger, p *Processor) (bool, string) {
	got, _, err := committedTotal(p)
	if err != nil {
		return false, err.Error()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for id, want := range g.counts {
		if got[id] != want {
			return false, fmt.Sprintf("movie %d: state has %+v, want %+v", id, got[id], want)
		}
	}
	if len(got) != len(g.counts) {
		return false, fmt.Sprintf("state has %d movies, ledger %d", len(got), len(g.counts))
	}
	return true, ""
}

// dlq reads every record of ratings-dlq, committed ones only (in
// transactional mode dead letters are written in transactions).
func (l *lab) dlq() ([]kafka.Message, error) {
	var out []kafka.Message
	err := l.k.ReadCommitted(servetest.Context(l.t, 10*time.Second), model.TopicRatingsDLQ, []int{0}, func(m kafka.Message) error {
		out = append(out, m)
		return nil
	})
	return out, err
}

func decodeJSON(t testing.TB, res *http.Response, v any) {
	t.Helper()
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatalf("decode %s: %v", res.Request.URL, err)
	}
}

// crashAfterCommit is a startWith hook: the first commit after which
// when(p) holds ends the run right there, before anything that follows a
// commit (a simulated crash), once; crashed says it happened.
func crashAfterCommit(crashed *atomic.Bool, when func(p *Processor) bool) func(*Processor, context.CancelFunc) {
	return func(p *Processor, crash context.CancelFunc) {
		p.testHookAfterCommit = func() bool {
			if !crashed.Load() && when(p) && crashed.CompareAndSwap(false, true) {
				crash()
				return true
			}
			return false
		}
	}
}

// committedMoreThan holds once more than n ratings are committed.
func committedMoreThan(n int64) func(*Processor) bool {
	return func(p *Processor) bool {
		_, got, _ := committedTotal(p)
		return got > n
	}
}
