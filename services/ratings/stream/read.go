package stream

import (
	"context"
	"fmt"
	"time"

	"github.com/ratingslab/lab/services/lib/kafkaio/positions"
	"github.com/ratingslab/lab/services/lib/requestids"
	"github.com/ratingslab/lab/services/lib/sqlitedb"
	"github.com/ratingslab/lab/services/model"
)

// Reader reads a ratings-stream database from outside the part (the lab's
// audit and replay): opened read-only, in one read transaction, so every
// read sees the same commit while the part keeps running. The tables'
// SQL stays in this package.
type Reader struct {
	tx *sqlitedb.ReadOnlyTx
}

// OpenReader opens the database at path (DBFile in a replica's data
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

// Aggregate is one movie's count and sum as a replica holds it.
type Aggregate struct {
	MovieID   int64 `json:"movie_id"`
	Partition int   `json:"partition"`
	Count     int64 `json:"count"`
	SumTenths int64 `json:"sum_tenths"`
	// SourceOffset: every rating of the movie below it on its partition is
	// included. After a rebalance a replica may keep a stale aggregate of a
	// movie it no longer owns; the one with the highest offset is current.
	SourceOffset int64 `json:"source_offset"`
}

// Aggregates reads every movie's aggregate.
func (r *Reader) Aggregates(ctx context.Context) ([]Aggregate, error) {
	var out []Aggregate
	err := r.tx.Each(ctx, `SELECT movie_id, partition, count, sum_tenths, source_offset FROM aggregates`, func(scan func(...any) error) error {
		var a Aggregate
		if err := scan(&a.MovieID, &a.Partition, &a.Count, &a.SumTenths, &a.SourceOffset); err != nil {
			return err
		}
		out = append(out, a)
		return nil
	})
	return out, err
}

// Positions reads the next offset of `ratings` per partition the state
// includes.
func (r *Reader) Positions(ctx context.Context) (map[int]int64, error) {
	pos, err := positions.Read(ctx, r.tx, model.TopicRatings)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", r.tx.Path, err)
	}
	return pos, nil
}

// MovieIDs reads the ids of the movies table the processor validates
// ratings against.
func (r *Reader) MovieIDs(ctx context.Context) ([]int64, error) {
	var out []int64
	err := r.tx.Each(ctx, `SELECT movie_id FROM movies`, func(scan func(...any) error) error {
		var id int64
		if err := scan(&id); err != nil {
			return err
		}
		out = append(out, id)
		return nil
	})
	return out, err
}

// RequestIDs reads the request ids one partition counted within the
// retention, in offset order (`lab replay rebuild` folds the log onto them
// as the processor would).
func (r *Reader) RequestIDs(ctx context.Context, partition int) ([]requestids.Entry, error) {
	ids, err := readRequestIDs(ctx, r.tx, partition)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", r.tx.Path, err)
	}
	return ids, nil
}

// RequestIDRetention reads the retention the request ids were kept with.
func (r *Reader) RequestIDRetention(ctx context.Context) (time.Duration, error) {
	d, err := readRequestIDRetention(ctx, r.tx)
	if err != nil {
		return 0, fmt.Errorf("store %s: %w", r.tx.Path, err)
	}
	return d, nil
}
