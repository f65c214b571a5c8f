package rpc

import (
	"context"

	"github.com/ratingslab/lab/services/lib/sqlitedb"
)

// Reader reads a ratings-rpc store from outside the part (the lab's
// audit): opened read-only, in one read transaction, so every read sees
// the same commit while the part keeps running. The tables' SQL stays in
// this package.
type Reader struct {
	tx *sqlitedb.ReadOnlyTx
}

// OpenReader opens the store at path (DBFile in the part's data
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

// MovieTotal is one rated movie's count and sum.
type MovieTotal struct {
	MovieID   int64
	Count     int64
	SumTenths int64
}

// Totals reads every rated movie's count and sum, by movie id.
func (r *Reader) Totals(ctx context.Context) ([]MovieTotal, error) {
	var out []MovieTotal
	err := r.tx.Each(ctx, `SELECT movie_id, count, sum_tenths FROM rated_movies ORDER BY movie_id`, func(scan func(...any) error) error {
		var m MovieTotal
		if err := scan(&m.MovieID, &m.Count, &m.SumTenths); err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

// Applied is a rating the store applied.
type Applied struct {
	MovieID      int64
	RatingTenths int64
}

// AppliedRequests reads the idempotency record: every request id the store
// applied, with what it applied.
func (r *Reader) AppliedRequests(ctx context.Context) (map[string]Applied, error) {
	out := map[string]Applied{}
	err := r.tx.Each(ctx, `SELECT request_id, movie_id, rating_tenths FROM applied_requests`, func(scan func(...any) error) error {
		var id string
		var a Applied
		if err := scan(&id, &a.MovieID, &a.RatingTenths); err != nil {
			return err
		}
		out[id] = a
		return nil
	})
	return out, err
}
