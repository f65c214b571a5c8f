package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/serve"
	"github.com/ratingslab/lab/services/model"
)

// A fork is the log variant run a second time on a copy of the log: the
// mirror (this file) copies the whole `movies` table and `ratings` from the
// fork's starting point from the lab's broker into the fork's own broker;
// on `ratings` it is a consumer group of the lab's broker (fork-<name>). The fork's
// ratings-stream and webserver-stream — the parts' own code, unchanged —
// run against the fork's broker, so nothing they write (rated-movies, dead
// letters) reaches the live topics.

// MirrorConfig configures a mirror process (`lab replay mirror`).
type MirrorConfig struct {
	// Source reaches the lab's broker (through the fork's edge proxy).
	Source kafkaio.Config
	// Target is the fork's broker.
	Target string
	// Group is the consumer group on the lab's broker; its committed
	// offsets are the mirror's position.
	Group  string
	Listen serve.Listen
	// TopicWait bounds the wait for the topics at start.
	TopicWait time.Duration
	Log       *slog.Logger
}

// mirrorTopics are copied: ratings from the group's offsets, movies (a
// compacted table) whole, ahead of the ratings.
var mirrorTopics = []string{model.TopicRatings, model.TopicMovies}

// mirror is a running mirror's state, for /healthz and GET /state.
type mirror struct {
	phase   atomic.Pointer[string]
	fatal   atomic.Pointer[error]
	lastErr atomic.Pointer[timedErr]
	copied  sync.Map // topic → *atomic.Int64
}

type timedErr struct {
	err error
	at  time.Time
}

func (m *mirror) setPhase(s string) { m.phase.Store(&s) }

func (m *mirror) ready(context.Context) error {
	if err := m.fatal.Load(); err != nil {
		return *err
	}
	if e := m.lastErr.Load(); e != nil && time.Since(e.at) < 10*time.Second {
		return fmt.Errorf("%s: %w", *m.phase.Load(), e.err)
	}
	if p := *m.phase.Load(); p != "mirroring" {
		return errors.New(p)
	}
	return nil
}

func (m *mirror) count(topic string, n int) {
	v, _ := m.copied.LoadOrStore(topic, new(atomic.Int64))
	v.(*atomic.Int64).Add(int64(n))
}

func (m *mirror) state() map[string]any {
	copied := map[string]int64{}
	m.copied.Range(func(k, v any) bool {
		copied[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return map[string]any{"phase": *m.phase.Load(), "copied": copied}
}

// RunMirror copies until ctx ends. It serves /healthz, /metrics and GET
// /state on cfg.Listen (health and metrics on its admin listener).
func RunMirror(ctx context.Context, cfg MirrorConfig) error {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Group == "" || cfg.Target == "" {
		return errors.New("--group and --to are required")
	}
	if cfg.TopicWait <= 0 {
		cfg.TopicWait = 30 * time.Second
	}
	reg := prometheus.NewRegistry()
	metrics := kafkaio.NewMetrics(reg)
	cfg.Source.ClientID = "fork-mirror"
	src, err := kafkaio.NewCluster(cfg.Source, metrics, cfg.Log)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := kafkaio.NewCluster(kafkaio.Config{Brokers: []string{cfg.Target}, ClientID: "fork-mirror"}, metrics, cfg.Log)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	defer dst.Close()

	m := &mirror{}
	m.setPhase("starting")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /state", func(w http.ResponseWriter, r *http.Request) { serve.WriteJSON(w, http.StatusOK, m.state()) })
	srv := serve.New(serve.Options{Public: mux, Registry: reg, Ready: m.ready, Info: func() map[string]any { return m.state() }, Log: cfg.Log})

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var serveErr error
	wg.Go(func() {
		serveErr = srv.Run(ctx, cfg.Listen)
		cancel()
	})
	err = m.run(ctx, cfg, src, dst)
	if err != nil && ctx.Err() == nil {
		// Stay up so that /healthz (and `lab replay fork --list`) says why.
		cfg.Log.Error("mirror cannot start; serving /healthz with the reason until stopped", "error", err.Error())
		m.fatal.Store(&err)
		<-ctx.Done()
	}
	cancel()
	wg.Wait()
	if serveErr != nil && !errors.Is(serveErr, context.Canceled) {
		return serveErr
	}
	return nil
}

func (m *mirror) run(ctx context.Context, cfg MirrorConfig, src, dst *kafkaio.Cluster) error {
	m.setPhase("waiting for the topics")
	wait := kafkaio.TopicWait{Timeout: cfg.TopicWait, OnWait: func(err error) { m.lastErr.Store(&timedErr{err: err, at: time.Now()}) }}
	have, err := src.WaitForTopics(ctx, mirrorTopics, wait)
	if err != nil {
		return fmt.Errorf("lab broker: %w", err)
	}
	want, err := dst.WaitForTopics(ctx, mirrorTopics, wait)
	if err != nil {
		return fmt.Errorf("fork broker: %w", err)
	}
	for _, t := range mirrorTopics {
		if have[t] != want[t] {
			return fmt.Errorf("topic %s has %d partitions on the lab's broker but %d on the fork's: records could not keep their partitions", t, have[t], want[t])
		}
	}

	writers := map[string]*kafkaio.Producer{}
	for _, t := range mirrorTopics {
		writers[t] = dst.Writer(t, kafkaio.WriterOptions{Balancer: partitionBalancer{}, BatchSize: importBatch})
		defer writers[t].Close()
	}
	// Each round copies the movies table whole, then ratings from the
	// group's last commit until a batch cannot be written; a ratings batch
	// is committed only once the fork's broker acknowledged it.
	for round := 1; ctx.Err() == nil; round++ {
		err := m.copyRound(ctx, cfg, src, have[model.TopicMovies], writers)
		if err == nil || ctx.Err() != nil {
			return nil
		}
		m.setPhase("recovering")
		m.lastErr.Store(&timedErr{err: err, at: time.Now()})
		cfg.Log.Warn("mirror round ended; starting again from the last commit", "round", round, "error", err.Error())
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
	return nil
}

// copyRound runs one round. Movies go first and stay ahead: the live
// webserver accepts a rating only for a movie its view already has, so the
// movie is in the live `movies` topic before the rating is in `ratings`;
// copying the movies table up to its current end before each ratings batch
// keeps that order in the fork, whose processor would otherwise
// dead-letter the rating as an unknown movie.
func (m *mirror) copyRound(ctx context.Context, cfg MirrorConfig, src *kafkaio.Cluster, moviePartitions int, writers map[string]*kafkaio.Producer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The movies table is small and compacted: it is copied whole at every
	// start (a copy twice is the same table), with no position to keep.
	movies := src.NewTailer(model.TopicMovies, moviePartitions, nil, func(ctx context.Context, batch []kafka.Message) error {
		return m.copy(ctx, writers, batch)
	})
	tailErr := make(chan error, 1)
	go func() { tailErr <- movies.Run(ctx) }()
	moviesCaughtUp := func() error {
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		defer wcancel()
		select {
		case err := <-tailErr:
			if err == nil {
				err = ctx.Err()
			}
			return fmt.Errorf("copying movies: %w", err)
		default:
		}
		if err := movies.WaitCaughtUp(wctx); err != nil {
			return fmt.Errorf("copying movies: %w", err)
		}
		return nil
	}
	m.setPhase("copying the movies table")
	if err := moviesCaughtUp(); err != nil {
		return err
	}

	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: src.Config().Brokers, Dialer: src.Dialer(), GroupID: cfg.Group, Topic: model.TopicRatings,
		MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 500 * time.Millisecond, QueueCapacity: 4096,
		StartOffset: kafka.FirstOffset, HeartbeatInterval: time.Second, SessionTimeout: 10 * time.Second,
		RebalanceTimeout: 10 * time.Second, JoinGroupBackoff: time.Second,
		ErrorLogger: kafka.LoggerFunc(func(f string, a ...any) { cfg.Log.Warn(fmt.Sprintf(f, a...), "component", "mirror reader") }),
	})
	defer r.Close()
	m.setPhase("mirroring")
	cfg.Log.Info("mirroring", "group", cfg.Group, "topics", mirrorTopics, "to", cfg.Target)

	batch := make([]kafka.Message, 0, importBatch)
	for ctx.Err() == nil {
		batch = batch[:0]
		msg, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			m.lastErr.Store(&timedErr{err: err, at: time.Now()})
			continue // kafka-go backs off and reconnects itself
		}
		batch = append(batch, msg)
		// Take what is already fetched, without waiting for more.
		for len(batch) < cap(batch) {
			fctx, fcancel := context.WithTimeout(ctx, time.Millisecond)
			more, err := r.FetchMessage(fctx)
			fcancel()
			if err != nil {
				break
			}
			batch = append(batch, more)
		}
		if err := moviesCaughtUp(); err != nil {
			return err
		}
		if err := m.copy(ctx, writers, batch); err != nil {
			return err
		}
		if err := r.CommitMessages(ctx, batch...); err != nil && ctx.Err() == nil {
			// A lost commit copies the batch again after a restart; the
			// fork's processor drops re-copied request ids.
			m.lastErr.Store(&timedErr{err: fmt.Errorf("commit: %w", err), at: time.Now()})
		}
	}
	return nil
}

// copy writes a batch to the fork's broker, each record on its partition
// with its key, value, headers and timestamp, topic by topic in order.
func (m *mirror) copy(ctx context.Context, writers map[string]*kafkaio.Producer, batch []kafka.Message) error {
	byTopic := map[string][]kafka.Message{}
	for _, msg := range batch {
		byTopic[msg.Topic] = append(byTopic[msg.Topic], kafka.Message{Partition: msg.Partition, Key: msg.Key, Value: msg.Value, Headers: msg.Headers, Time: msg.Time})
	}
	for topic, msgs := range byTopic {
		w := writers[topic]
		if w == nil {
			continue
		}
		for attempt := 1; ; attempt++ {
			wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			err := w.Write(wctx, msgs...)
			cancel()
			if err == nil {
				break
			}
			m.lastErr.Store(&timedErr{err: err, at: time.Now()})
			if attempt == 5 || ctx.Err() != nil {
				return fmt.Errorf("copy %d record(s) of %s to the fork's broker: %w", len(msgs), topic, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
			}
		}
		m.count(topic, len(msgs))
	}
	return nil
}
