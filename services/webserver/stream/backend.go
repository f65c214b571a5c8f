// Package stream is webserver-stream: the shared public API and page
// (services/webserver) over a Backend that writes to the log and reads its
// own view.
//
//   - POST /api/ratings: the movie id is checked against the webserver's own
//     movies table, then one rating event is produced to `ratings` (key:
//     movie id; value: model.RatingEvent, docs/events.md) with acks=all.
//     202 is answered only once the broker acknowledged it. When it was not
//     acknowledged within --produce-timeout the answer says what is known
//     (docs/api.md, "Outcomes"): 503 when the event is certainly not in the
//     log (the broker refused it, or it was never sent), 504 "outcome
//     unknown" when it was sent and no answer came — it may still be in the
//     log. The event is sent in at most one produce request, never retried
//     in the background (kafkaio.OnceProducer), so a 504's event can land
//     only while that one request is in transit. A retry with the same
//     request_id is counted once: ratings-stream drops a request id it has
//     already counted.
//   - GET /api/movies[/{id}]: read from an embedded SQLite view, never from
//     ratings-stream. The view is hydrated from the compacted `movies` and
//     `rated-movies` topics. It uses no consumer group: every webserver
//     wants every partition, so it reads all partitions itself and stores
//     the positions it reached in the view's own transactions; a restart
//     resumes there. Per movie it keeps the rated-movies update with the
//     highest source offset, so stale re-emits never move a count back.
//   - Freshness: for every rated-movies update that changes what the view
//     shows (a movie's count or sum), lab_view_freshness_seconds{view=
//     "rated-movies"} observes now minus the event time of the newest rating
//     it includes — the time from a user's click to the count being visible
//     here. Per fetched batch only the winning update of each movie is
//     written (one transaction), so an update superseded within its batch is
//     never visible and not observed; nor is one that shows the count the
//     view already showed (a new owner's re-count after a rebalance).
//     Updates applied while catching up at start are not observed (they
//     measure downtime, not freshness).
package stream

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/lib/eventformat"
	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/moviestable"
	"github.com/ratingslab/lab/services/lib/variantname"
	"github.com/ratingslab/lab/services/model"
	"github.com/ratingslab/lab/services/webserver"
)

// Config configures a Backend. Zero values mean the defaults.
type Config struct {
	Cluster *kafkaio.Cluster // required
	DataDir string           // required: the view lives here
	// ProduceTimeout bounds waiting for the broker's acknowledgement of one
	// rating (default 2s); past it the answer is 503 or 504.
	ProduceTimeout time.Duration
	// RetryHorizon is how long after a first attempt whose outcome is
	// unknown a retry with the same request id is produced again (default
	// DefaultRetryHorizon); later it is 409.
	RetryHorizon time.Duration
	// TopicWait bounds the wait for the topics at start.
	TopicWait kafkaio.TopicWait
	// Codec writes `ratings` and reads `movies` and `rated-movies` in the
	// lab's format (nil: JSON).
	Codec      *model.Codec
	Registerer prometheus.Registerer
	Log        *slog.Logger
}

// Backend implements webserver.Backend over the log.
type Backend struct {
	cfg      Config
	k        *kafkaio.Cluster
	log      *slog.Logger
	view     *view
	requests *requestLog
	metrics  *metrics

	movies *moviestable.Table // for POST validation

	ratings   atomic.Pointer[ratingsLog]
	moviesT   atomic.Pointer[kafkaio.Tailer]
	ratedT    atomic.Pointer[kafkaio.Tailer]
	caughtUp  atomic.Bool // both tables reached the topics' ends once
	hasData   atomic.Bool // the view holds movies (from disk or the log)
	startErr  atomic.Pointer[error]
	phase     atomic.Pointer[string]
	lastError atomic.Pointer[timedError]
}

// RatingsLog puts one rating event in the log: nil once the broker
// acknowledged it; an error matching kafkaio.ErrOutcomeUnknown when it may
// be in the log anyway; any other error when it certainly is not.
// kafkaio.OnceProducer is the lab's; another client (an idempotent
// producer) plugs in here.
type RatingsLog interface {
	Produce(ctx context.Context, key, value []byte) error
}

// ratingsLog boxes a RatingsLog for an atomic pointer.
type ratingsLog struct{ RatingsLog }

type timedError struct {
	err error
	at  time.Time
}

var _ webserver.Backend = (*Backend)(nil)

// NewBackend opens the view. Run hydrates it and enables POST.
func NewBackend(cfg Config) (*Backend, error) {
	if cfg.Cluster == nil {
		return nil, errors.New("webserver-stream: no Kafka cluster configured")
	}
	if cfg.ProduceTimeout <= 0 {
		cfg.ProduceTimeout = 2 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	v, err := openView(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	requests, err := openRequestLog(cfg.DataDir, cfg.RetryHorizon, cfg.Log)
	if err != nil {
		v.Close()
		return nil, err
	}
	b := &Backend{cfg: cfg, k: cfg.Cluster, log: cfg.Log, view: v, requests: requests, metrics: newMetrics(cfg.Registerer, requests)}
	movies, err := v.loadMovies(context.Background())
	if err != nil {
		b.Close()
		return nil, err
	}
	b.movies = moviestable.New(movies, v.applyMovies, cfg.Log).WithCodec(cfg.Codec)
	b.hasData.Store(len(movies) > 0)
	b.setPhase("starting")
	b.refreshRows(context.Background())
	return b, nil
}

// Close releases the view and the request-id record. Call it after Run returned.
func (b *Backend) Close() error { return errors.Join(b.view.Close(), b.requests.Close()) }

func (b *Backend) setPhase(s string) { b.phase.Store(&s) }

// Run waits for the topics, starts the producer and hydrates the view until
// ctx ends. It returns an error only when it cannot start.
func (b *Backend) Run(ctx context.Context) error {
	wait := b.cfg.TopicWait
	wait.OnWait = func(err error) { b.setPhase("waiting for kafka topics: " + err.Error()) }
	parts, err := b.k.WaitForTopics(ctx, []string{model.TopicRatings, model.TopicMovies, model.TopicRatedMovies}, wait)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		b.startErr.Store(&err)
		return err
	}
	if err := eventformat.Prepare(ctx, b.cfg.Codec, b.log, b.cfg.TopicWait.Timeout, model.TopicRatings); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		b.startErr.Store(&err)
		return err
	}
	w := b.k.OnceProducer(model.TopicRatings, parts[model.TopicRatings], kafkaio.OnceOptions{})
	defer w.Close()
	b.ratings.Store(&ratingsLog{w})

	moviesPos, err := b.view.positions(ctx, model.TopicMovies)
	if err != nil {
		return err
	}
	ratedPos, err := b.view.positions(ctx, model.TopicRatedMovies)
	if err != nil {
		return err
	}
	mt := b.k.NewTailer(model.TopicMovies, parts[model.TopicMovies], moviesPos, b.applyMovies)
	// Committed records only: ratings-stream may write rated-movies in
	// Kafka transactions (--delivery=transactional).
	rt := b.k.NewTailer(model.TopicRatedMovies, parts[model.TopicRatedMovies], ratedPos, b.applyRated).ReadCommitted()
	b.moviesT.Store(mt)
	b.ratedT.Store(rt)

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, t := range []*kafkaio.Tailer{mt, rt} {
		wg.Go(func() {
			if err := t.Run(ctx); err != nil {
				errs <- err
			}
		})
	}
	b.setPhase("hydrating the view")
	wg.Go(func() { b.catchUp(ctx, mt, rt) })
	wg.Go(func() { b.watchRows(ctx) })

	select {
	case <-ctx.Done():
		wg.Wait()
		return nil
	case err := <-errs:
		// The view's database failed: serve what is there, report it.
		b.log.Error("view hydration stopped", "error", err.Error())
		b.startErr.Store(&err)
		<-ctx.Done()
		wg.Wait()
		return nil
	}
}

// catchUp marks the view hydrated once both tables reached the ends the
// topics had. Each attempt is bounded; it retries while the broker is away.
func (b *Backend) catchUp(ctx context.Context, tailers ...*kafkaio.Tailer) {
	for attempt := 1; ctx.Err() == nil; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		var err error
		for _, t := range tailers {
			if err = t.WaitCaughtUp(actx); err != nil {
				break
			}
		}
		cancel()
		if err == nil {
			b.caughtUp.Store(true)
			b.setPhase("serving")
			b.log.Info("view hydrated", "movies", b.movies.Len())
			return
		}
		if ctx.Err() != nil {
			return
		}
		b.log.Warn("view not hydrated yet", "attempt", attempt, "error", err.Error())
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// watchRows refreshes lab_view_rows now and then (cheap counts).
func (b *Backend) watchRows(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			b.refreshRows(ctx)
		}
	}
}

func (b *Backend) refreshRows(ctx context.Context) {
	movies, rated, err := b.view.counts(ctx)
	if err != nil {
		return
	}
	b.metrics.rows.WithLabelValues(model.TopicMovies).Set(float64(movies))
	b.metrics.rows.WithLabelValues(model.TopicRatedMovies).Set(float64(rated))
}

func (b *Backend) applyMovies(ctx context.Context, batch []kafka.Message) error {
	if err := b.movies.Apply(ctx, batch); err != nil {
		return err
	}
	b.hasData.Store(true)
	return nil
}

func (b *Backend) applyRated(ctx context.Context, batch []kafka.Message) error {
	updates := make([]model.RatedMovieEvent, 0, len(batch))
	pos := map[int]int64{}
	for _, m := range batch {
		pos[m.Partition] = m.Offset + 1
		var ev model.RatedMovieEvent
		err := eventformat.Await(ctx, b.log, "rated-movies view", func() (err error) {
			ev, err = b.cfg.Codec.DecodeRatedMovie(ctx, m.Value)
			return err
		})
		if errors.Is(err, model.ErrRegistryUnavailable) {
			return err // stopped while waiting
		}
		if err != nil {
			b.log.Warn("skipping rated-movies record", "partition", m.Partition, "offset", m.Offset, "error", err.Error())
			continue
		}
		updates = append(updates, ev)
	}
	applied, err := b.view.applyRated(ctx, updates, pos)
	if err != nil {
		return err
	}
	if b.caughtUp.Load() {
		now := time.Now()
		for _, u := range applied {
			if !u.LastEventTime.IsZero() {
				b.metrics.freshness.WithLabelValues(model.TopicRatedMovies).Observe(now.Sub(u.LastEventTime).Seconds())
			}
		}
	}
	return nil
}

// Rate produces one rating event and returns once the broker acknowledged
// it (acks=all). The request id is recorded first (requestLog): a reuse
// for another rating is refused, a repeat of an acknowledged rating is
// answered without producing it again.
func (b *Backend) Rate(ctx context.Context, r model.Rating) error {
	if !b.hasData.Load() {
		return &webserver.UnavailableError{Dependency: "movies view", RetryAfter: time.Second,
			Err: errors.New("the movies table is still being loaded from the log")}
	}
	if _, known := b.movies.Get(r.MovieID); !known {
		return webserver.ErrUnknownMovie
	}
	w := b.ratings.Load()
	if w == nil {
		return &webserver.UnavailableError{Dependency: "broker", RetryAfter: time.Second, Err: b.notStarted()}
	}
	now := time.Now().UTC()
	switch err := b.requests.begin(ctx, r, now); {
	case errors.Is(err, errAlreadyAcknowledged):
		return nil
	case errors.As(err, new(*webserver.ConflictError)):
		return err
	case err != nil:
		return &webserver.UnavailableError{Dependency: "request-id record", RetryAfter: time.Second, Err: err}
	}
	ev := model.NewRatingEvent(r, now)
	value, err := b.cfg.Codec.EncodeRating(ctx, ev)
	if err != nil {
		return contractError(err)
	}
	pctx, cancel := context.WithTimeout(ctx, b.cfg.ProduceTimeout)
	defer cancel()
	if err := w.Produce(pctx, ev.Key(), value); err != nil {
		b.lastError.Store(&timedError{err: err, at: time.Now()})
		if kafkaio.IsOutcomeUnknown(err) {
			return &webserver.UnavailableError{Dependency: "broker", RetryAfter: time.Second, OutcomeUnknown: true,
				Err: fmt.Errorf("sent, not acknowledged within %s (it may be in the log): %w", b.cfg.ProduceTimeout, err)}
		}
		return &webserver.UnavailableError{Dependency: "broker", RetryAfter: time.Second,
			Err: fmt.Errorf("not in the log: %w", err)}
	}
	// An acknowledgement proves producing works again: health need not
	// wait for the failure to age out.
	b.lastError.Store(nil)
	// Marked in memory now, in the record soon after (not awaited): a mark
	// a crash loses makes a retry within the horizon produce it again, and
	// ratings-stream counts it once.
	b.requests.acknowledged(r.RequestID, time.Now())
	return nil
}

func (b *Backend) notStarted() error {
	if err := b.startErr.Load(); err != nil {
		return *err
	}
	return errors.New("the producer is not started yet (waiting for the topics)")
}

// Movies reads one page of the view: every movie of the movies table, with
// its aggregate (zero when never rated).
func (b *Backend) Movies(ctx context.Context, offset, limit int) ([]model.RatedMovie, int, error) {
	if !b.hasData.Load() {
		return nil, 0, b.hydrating()
	}
	return b.view.page(ctx, offset, limit)
}

// Movie reads one movie of the view.
func (b *Backend) Movie(ctx context.Context, id int64) (model.RatedMovie, error) {
	if !b.hasData.Load() {
		return model.RatedMovie{}, b.hydrating()
	}
	m, err := b.view.movie(ctx, id)
	if errors.Is(err, sql.ErrNoRows) {
		return m, webserver.ErrNotFound
	}
	return m, err
}

func (b *Backend) hydrating() error {
	return &webserver.UnavailableError{Dependency: "movies view", RetryAfter: time.Second,
		Err: errors.New("the view is still being loaded from the log")}
}

// Ready is the part's health: the view is hydrated and both tables can read
// the log. A broker problem makes it 503 with the reason, while GETs keep
// answering from the view.
func (b *Backend) Ready(context.Context) error {
	if err := b.startErr.Load(); err != nil {
		return *err
	}
	for _, v := range []struct {
		name string
		t    *kafkaio.Tailer
	}{{model.TopicMovies, b.moviesT.Load()}, {model.TopicRatedMovies, b.ratedT.Load()}} {
		if v.t == nil {
			continue
		}
		if err := v.t.Err(); err != nil {
			return fmt.Errorf("%s: %s view: %w", *b.phase.Load(), v.name, err)
		}
	}
	if !b.caughtUp.Load() {
		return errors.New(*b.phase.Load())
	}
	if e := b.lastError.Load(); e != nil && time.Since(e.at) < 5*time.Second {
		return fmt.Errorf("producing ratings: %w", e.err)
	}
	return nil
}

// Info is shown in /healthz.
func (b *Backend) Info() map[string]any {
	return map[string]any{"variant": variantname.Stream, "phase": *b.phase.Load(), "movies": b.movies.Len()}
}
