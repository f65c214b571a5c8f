package stream

import (
	"context"
	"log/slog"
	"sync"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/kafkaio"
	"github.com/ratingslab/lab/services/model"
)

// movieTable is the movies table the processor joins ratings with: the
// compacted `movies` topic materialized in the processor's database (rows
// and positions in one transaction) and mirrored in memory for the join.
type movieTable struct {
	store *store
	log   *slog.Logger

	mu     sync.RWMutex
	movies map[int64]movieInfo

	tailer *kafkaio.Tailer
}

func newMovieTable(ctx context.Context, k *kafkaio.Cluster, s *store, partitions int, log *slog.Logger) (*movieTable, error) {
	movies, pos, err := s.loadMovies(ctx)
	if err != nil {
		return nil, err
	}
	t := &movieTable{store: s, log: log, movies: movies}
	t.tailer = k.NewTailer(model.TopicMovies, partitions, pos, t.apply)
	return t, nil
}

// apply stores one batch of movie records. A record that does not decode is
// skipped with a warning: the movies topic is the connector's, and one bad
// row must not stop the ratings.
func (t *movieTable) apply(ctx context.Context, batch []kafka.Message) error {
	changes := make([]movieChange, 0, len(batch))
	pos := map[int]int64{}
	for _, m := range batch {
		pos[m.Partition] = m.Offset + 1
		id, err := model.ParseMovieKey(m.Key)
		if err != nil {
			t.log.Warn("skipping movies record", "partition", m.Partition, "offset", m.Offset, "error", err.Error())
			continue
		}
		mv, ok, err := model.DecodeMovie(m.Value)
		switch {
		case err != nil:
			t.log.Warn("skipping movies record", "partition", m.Partition, "offset", m.Offset, "error", err.Error())
		case !ok:
			changes = append(changes, movieChange{ID: id, Deleted: true})
		default:
			changes = append(changes, movieChange{ID: id, Movie: movieInfo{Title: mv.Title, ReleaseYear: mv.ReleaseYear}})
		}
	}
	if err := t.store.applyMovies(ctx, changes, pos); err != nil {
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

func (t *movieTable) get(id int64) (movieInfo, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	m, ok := t.movies[id]
	return m, ok
}

func (t *movieTable) size() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.movies)
}
