package stream

import (
	"context"
	"fmt"

	"github.com/ratingslab/lab/services/lib/kafkaio/positions"
	"github.com/ratingslab/lab/services/lib/sqlitedb"
	"github.com/ratingslab/lab/services/model"
)

// Reader reads webserver-stream's view from outside the part (`lab
// replay`): opened read-only, in one read transaction, so every read sees
// the same commit while the part keeps running. The tables' SQL stays in
// this package.
type Reader struct {
	tx *sqlitedb.ReadOnlyTx
}

// OpenReader opens the view at path (DBFile in the part's data
// directory); a missing file is an error that wraps os.ErrNotExist.
func OpenReader(ctx context.Context, path string) (*Reader, error) {
	tx, err := sqlitedb.BeginReadOnly(ctx, path)
	if err != nil {
		return nil, err
	}
	return &Reader{tx: tx}, nil
}

// Close ends the read.
func (r *Reader) Close() error { return r.tx.Close() }

// Movies reads the movies table (what GET /api/movies lists): id, title
// and release year.
func (r *Reader) Movies(ctx context.Context) ([]model.Movie, error) {
	var out []model.Movie
	err := r.tx.Each(ctx, `SELECT movie_id, title, release_year FROM movies`, func(scan func(...any) error) error {
		var m model.Movie
		if err := scan(&m.ID, &m.Title, &m.ReleaseYear); err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

// Rated is the rated-movies update the view holds for a movie, with the
// position it came from.
type Rated struct {
	MovieID         int64
	Count           int64
	SumTenths       int64
	SourcePartition int
	SourceOffset    int64
}

// Rated reads every movie's rated-movies update.
func (r *Reader) Rated(ctx context.Context) ([]Rated, error) {
	var out []Rated
	err := r.tx.Each(ctx, `SELECT movie_id, count, sum_tenths, source_partition, source_offset FROM rated`, func(scan func(...any) error) error {
		var m Rated
		if err := scan(&m.MovieID, &m.Count, &m.SumTenths, &m.SourcePartition, &m.SourceOffset); err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

// Positions reads the view's next offsets: topic → partition → offset.
func (r *Reader) Positions(ctx context.Context) (map[string]map[int]int64, error) {
	pos, err := positions.ReadAll(ctx, r.tx)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", r.tx.Path, err)
	}
	return pos, nil
}
