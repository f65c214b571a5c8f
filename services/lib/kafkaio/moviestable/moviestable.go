// Package moviestable is the compacted `movies` topic materialized by a
// stream part: each batch of records is decoded, persisted by the part's own
// database together with the positions it reaches (one transaction, so a
// restart resumes exactly there), then mirrored in memory for lookups.
// ratings-stream joins ratings with it; webserver-stream validates POSTs.
package moviestable

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/lib/eventformat"
	"github.com/ratingslab/lab/services/model"
)

// Change is one record of the movies topic: an upsert or a tombstone.
type Change struct {
	ID      int64
	Movie   model.Movie
	Deleted bool
}

// Persist writes changes and the next offset per partition they reach in
// one transaction.
type Persist func(ctx context.Context, changes []Change, pos map[int]int64) error

// Table is the movies table in memory, kept in step with its database.
type Table struct {
	persist Persist
	log     *slog.Logger
	codec   *model.Codec // nil: JSON

	mu     sync.RWMutex
	movies map[int64]model.Movie
}

// New starts from the rows already in the database.
func New(rows map[int64]model.Movie, persist Persist, log *slog.Logger) *Table {
	if rows == nil {
		rows = map[int64]model.Movie{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Table{persist: persist, log: log, movies: rows}
}

// WithCodec makes the table decode values with c (the part's --format).
func (t *Table) WithCodec(c *model.Codec) *Table {
	t.codec = c
	return t
}

// Apply stores one batch of movie records (a kafkaio.Tailer's apply func).
// A record that does not decode is skipped with a warning (a registry that
// cannot be asked fails the batch instead, so the tailer retries it): the movies topic
// is the connector's, and one bad row must not stop the part.
func (t *Table) Apply(ctx context.Context, batch []kafka.Message) error {
	changes := make([]Change, 0, len(batch))
	pos := map[int]int64{}
	for _, m := range batch {
		pos[m.Partition] = m.Offset + 1
		id, err := model.ParseMovieKey(m.Key)
		if err != nil {
			t.log.Warn("skipping movies record", "partition", m.Partition, "offset", m.Offset, "error", err.Error())
			continue
		}
		var mv model.Movie
		var ok bool
		err = eventformat.Await(ctx, t.log, "movies table", func() (err error) {
			mv, ok, err = t.codec.DecodeMovie(ctx, m.Value)
			return err
		})
		switch {
		case errors.Is(err, model.ErrRegistryUnavailable):
			return err // stopped while waiting
		case err != nil:
			t.log.Warn("skipping movies record", "partition", m.Partition, "offset", m.Offset, "error", err.Error())
		case !ok:
			changes = append(changes, Change{ID: id, Deleted: true})
		default:
			changes = append(changes, Change{ID: id, Movie: mv})
		}
	}
	if err := t.persist(ctx, changes, pos); err != nil {
		return err
	}
	t.mu.Lock()
	for _, c := range changes {
		if c.Deleted {
			delete(t.movies, c.ID)
		} else {
			t.movies[c.ID] = c.Movie
		}
	}
	t.mu.Unlock()
	return nil
}

// Get returns movie id as the table holds it.
func (t *Table) Get(id int64) (model.Movie, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	m, ok := t.movies[id]
	return m, ok
}

// Len is the number of movies in the table.
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.movies)
}
