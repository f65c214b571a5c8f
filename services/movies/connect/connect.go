// Package connect is movies-connect, the Kafka Connect role of the log
// variant: it streams the legacy movie catalog into the compacted `movies`
// topic, keyed by movie id, the way Connect's JDBC source connector does in
// timestamp+incrementing mode.
//
// How: the catalog's rows are read in (updated_at, movie_id) order after a
// stored position (legacydb.Changes). Starting from the zero position, the
// first passes are the snapshot: every row. After that each poll returns the
// rows added or edited since, so `lab data movie add|edit` reaches the topic
// within one poll interval. Each batch is produced with acks=all and only
// then is the position written to the data directory (atomically: temp file
// and rename), so the position survives a restart and a crash in between
// produces the batch again — harmless in a compacted topic keyed by id, as
// the value is the row's full state.
//
// Why timestamp+incrementing rather than change data capture: it needs
// nothing from the legacy database but an updated_at column and a unique id,
// which is what a team can usually get from a legacy system. Its limits,
// documented in docs/events.md:
//   - deletes are not seen (a deleted row just stops changing; no tombstone
//     is produced) — soft deletes or CDC would be needed;
//   - several edits between two polls arrive as one, the latest;
//   - correctness depends on every writer stamping updated_at in commit
//     order; legacydb guarantees it for its own writers (see Changes), a
//     hand-written UPDATE that skips it is missed.
package connect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/serve"
	"github.com/ratingslab/lab/services/model"
	"github.com/ratingslab/lab/services/movies/legacydb"
)

// Config configures a Connector. Zero values mean the defaults.
type Config struct {
	Cluster *kafkaio.Cluster // required
	DB      *legacydb.DB     // required: the legacy catalog
	DataDir string           // required: the position file lives here
	// PollInterval is the pause between polls that found nothing new (default 1s).
	PollInterval time.Duration
	// BatchSize is the most rows per poll and produce (default 500).
	BatchSize int
	// TopicWait bounds the wait for the movies topic at start.
	TopicWait kafkaio.TopicWait
	// Codec writes `movies` values in the lab's format (nil: JSON).
	Codec *model.Codec
	Log   *slog.Logger
}

// Connector streams the catalog into the movies topic.
type Connector struct {
	cfg Config
	log *slog.Logger
	out *kafkaio.Producer

	mu       sync.Mutex
	pos      Position
	phase    string
	problem  error
	lastPoll time.Time
}

// Position is the connector's stored source offset.
type Position struct {
	legacydb.Position
	// SnapshotDone is set once the first pass over the catalog completed.
	SnapshotDone bool `json:"snapshot_done"`
}

// positionFile is the position's file inside the data directory.
const positionFile = "movies-connect.position.json"

// New loads the stored position (zero when there is none: snapshot first).
func New(cfg Config) (*Connector, error) {
	if cfg.Cluster == nil || cfg.DB == nil {
		return nil, errors.New("movies-connect: a Kafka cluster and a legacy database are required")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("--data: a data directory is required (the connector's position is stored there)")
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	cfg.BatchSize = min(cfg.BatchSize, legacydb.MaxPage)
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("--data %s: %w", cfg.DataDir, err)
	}
	c := &Connector{cfg: cfg, log: cfg.Log, phase: "starting"}
	pos, err := c.loadPosition()
	if err != nil {
		return nil, err
	}
	c.pos = pos
	return c, nil
}

// Run streams until ctx ends; it returns an error only when it cannot start.
func (c *Connector) Run(ctx context.Context) error {
	wait := c.cfg.TopicWait
	wait.OnWait = func(err error) { c.setProblem("waiting for kafka topics", err) }
	parts, err := c.cfg.Cluster.WaitForTopics(ctx, []string{model.TopicMovies}, wait)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		c.setProblem("stopped", err)
		return err
	}
	if err := c.checkLogNotReset(ctx, parts[model.TopicMovies]); err != nil {
		c.setProblem("stopped", err)
		return err
	}
	c.out = c.cfg.Cluster.Writer(model.TopicMovies, kafkaio.WriterOptions{})
	defer c.out.Close()

	pos := c.Position()
	if pos.SnapshotDone {
		c.setProblem("streaming changes", nil)
		c.log.Info("resuming change stream", "after_updated_at_us", pos.UpdatedAt, "after_movie_id", pos.ID)
	} else {
		c.setProblem("snapshot", nil)
		c.log.Info("taking the catalog snapshot", "from_updated_at_us", pos.UpdatedAt, "from_movie_id", pos.ID)
	}
	failures := 0
	for {
		n, err := c.poll(ctx)
		if ctx.Err() != nil {
			return nil
		}
		pause := c.cfg.PollInterval
		switch {
		case err != nil:
			failures++
			c.setProblem(c.phaseName(), err)
			c.log.Warn("poll failed; retrying", "consecutive_failures", failures, "error", err.Error())
			pause = retryPause(c.cfg.PollInterval, failures)
		case n == c.cfg.BatchSize:
			failures = 0
			c.setProblem(c.phaseName(), nil)
			continue // more rows are waiting: no pause
		default:
			failures = 0
			if !c.Position().SnapshotDone {
				if err := c.finishSnapshot(); err != nil {
					c.setProblem("snapshot", err)
					break
				}
			}
			c.setProblem("streaming changes", nil)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
	}
}

// maxRetryPause caps the pause between retries of a failing poll (the broker
// or the legacy database is away): the connector is back within about this
// long of their return, however long the outage lasted.
const maxRetryPause = 2 * time.Second

// retryPause is the pause after the given number of consecutive failed
// polls: one poll interval more per failure, at most maxRetryPause (or the
// poll interval, when that is longer).
func retryPause(interval time.Duration, failures int) time.Duration {
	return min(interval*time.Duration(failures), max(interval, maxRetryPause))
}

func (c *Connector) phaseName() string {
	if c.Position().SnapshotDone {
		return "streaming changes"
	}
	return "snapshot"
}

// poll moves one batch of changed rows to the topic and advances the
// stored position once the broker acknowledged them.
func (c *Connector) poll(ctx context.Context) (int, error) {
	pos := c.Position()
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	movies, next, err := c.cfg.DB.Changes(qctx, pos.Position, c.cfg.BatchSize)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("reading changes from the legacy database: %w", err)
	}
	c.mu.Lock()
	c.lastPoll = time.Now()
	c.mu.Unlock()
	if len(movies) == 0 {
		return 0, nil
	}
	msgs := make([]kafka.Message, len(movies))
	for i, m := range movies {
		value, err := c.cfg.Codec.EncodeMovie(ctx, m)
		if err != nil {
			return 0, fmt.Errorf("encoding movie %d: %w", m.ID, err)
		}
		msgs[i] = kafka.Message{Key: strconv.AppendInt(nil, m.ID, 10), Value: value}
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = c.out.Write(wctx, msgs...)
	cancel()
	if err != nil {
		return 0, err
	}
	pos.Position = next
	if err := c.savePosition(pos); err != nil {
		return 0, err
	}
	c.log.Info("movies streamed", "rows", len(movies), "position_updated_at_us", next.UpdatedAt, "position_movie_id", next.ID)
	return len(movies), nil
}

func (c *Connector) finishSnapshot() error {
	pos := c.Position()
	pos.SnapshotDone = true
	if err := c.savePosition(pos); err != nil {
		return err
	}
	c.log.Info("catalog snapshot complete; streaming changes", "poll_interval", c.cfg.PollInterval.String())
	return nil
}

// checkLogNotReset refuses to resume from a stored position when the movies
// topic is empty: the rows before the position were streamed into a log
// that is gone (the broker's data wiped, the topic created again), and
// resuming would leave them out of it for good. A broker that cannot be
// asked now is no reason not to start: the check is then skipped, logged.
func (c *Connector) checkLogNotReset(ctx context.Context, partitions int) error {
	pos := c.Position()
	if pos.ID == 0 && pos.UpdatedAt == 0 && !pos.SnapshotDone {
		return nil
	}
	ps := make([]int, partitions)
	for i := range ps {
		ps[i] = i
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	bounds, err := c.cfg.Cluster.Offsets(cctx, model.TopicMovies, ps)
	if err != nil {
		c.log.Warn("could not check the movies topic against the stored position; resuming unchecked", "error", err.Error())
		return nil
	}
	for _, b := range bounds {
		if b.End > 0 {
			return nil
		}
	}
	file := filepath.Join(c.cfg.DataDir, positionFile)
	c.log.Error("log reset: the movies topic is empty but the position says the catalog was streamed", "position_movie_id", pos.ID, "position_file", file)
	return serve.Permanent(fmt.Errorf("log reset on %s: the topic is empty but %s says the catalog was streamed up to movie %d, "+
		"so the log it was streamed into is gone (broker data wiped, or the topic re-created); stopped rather than leave those movies out. "+
		"Remove %s to stream the whole catalog again", model.TopicMovies, file, pos.ID, file))
}

// Position is the last position stored.
func (c *Connector) Position() Position {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pos
}

func (c *Connector) loadPosition() (Position, error) {
	var pos Position
	b, err := os.ReadFile(filepath.Join(c.cfg.DataDir, positionFile))
	if errors.Is(err, os.ErrNotExist) {
		return pos, nil
	}
	if err != nil {
		return pos, fmt.Errorf("read position: %w", err)
	}
	if err := json.Unmarshal(b, &pos); err != nil {
		return pos, fmt.Errorf("position file %s is corrupt (remove it to take a new snapshot): %w", filepath.Join(c.cfg.DataDir, positionFile), err)
	}
	return pos, nil
}

// savePosition replaces the position file atomically: a crash leaves the
// old position or the new one, never half of either.
func (c *Connector) savePosition(pos Position) error {
	b, err := json.Marshal(pos)
	if err != nil {
		return err
	}
	path := filepath.Join(c.cfg.DataDir, positionFile)
	tmp, err := os.CreateTemp(c.cfg.DataDir, positionFile+".*")
	if err != nil {
		return fmt.Errorf("store position: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("store position: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("store position: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("store position: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("store position: %w", err)
	}
	c.mu.Lock()
	c.pos = pos
	c.mu.Unlock()
	return nil
}

func (c *Connector) setProblem(phase string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.phase, c.problem = phase, err
}

// Ready is healthy once the snapshot is complete and the last poll worked.
func (c *Connector) Ready(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.problem != nil:
		return fmt.Errorf("%s: %w", c.phase, c.problem)
	case !c.pos.SnapshotDone:
		return fmt.Errorf("%s in progress", c.phase)
	}
	return nil
}

// Info is shown in /healthz.
func (c *Connector) Info() map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return map[string]any{
		"phase":         c.phase,
		"position":      c.pos.Position,
		"snapshot_done": c.pos.SnapshotDone,
		"last_poll":     c.lastPoll,
	}
}
