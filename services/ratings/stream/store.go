package stream

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ratingslab/lab/services/lib/kafkaio/moviestable"
	"github.com/ratingslab/lab/services/lib/kafkaio/positions"
	"github.com/ratingslab/lab/services/lib/sqlitedb"
	"github.com/ratingslab/lab/services/model"
)

// store is the processor's embedded database: the count and sum per movie,
// the consumed offsets of `ratings` (effectively-once), and the movies table
// with its own offsets. A batch's state and offsets are one transaction.
type store struct {
	db *sql.DB

	upsertAggregate   *sql.Stmt
	upsertOffset      *sql.Stmt
	upsertMovie       *sql.Stmt
	deleteMovie       *sql.Stmt
	insertRequestIDs  *sql.Stmt
	forgetRequestIDs  *sql.Stmt
	setRequestIDFloor *sql.Stmt
}

const schema = positions.Schema + `
CREATE TABLE IF NOT EXISTS meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
-- count and sum per movie; source_offset: every rating of the movie below it
-- on its partition is included
CREATE TABLE IF NOT EXISTS aggregates (
	movie_id      INTEGER PRIMARY KEY,
	partition     INTEGER NOT NULL,
	count         INTEGER NOT NULL CHECK (count >= 0),
	sum_tenths    INTEGER NOT NULL CHECK (sum_tenths >= 0),
	source_offset INTEGER NOT NULL,
	last_event_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS aggregates_by_partition ON aggregates (partition);
-- the movies table materialized from the compacted movies topic
CREATE TABLE IF NOT EXISTS movies (
	movie_id     INTEGER PRIMARY KEY,
	title        TEXT    NOT NULL,
	release_year INTEGER NOT NULL
);
`

// DBFile is the database's name inside the part's data directory.
const DBFile = "ratings-stream.db"

func openStore(dir string) (*store, error) {
	if dir == "" {
		return nil, errors.New("--data: a data directory is required")
	}
	abs, err := sqlitedb.File(dir, DBFile)
	if err != nil {
		return nil, err
	}
	// One connection (the default): the batch loop and the movies table take
	// turns in database/sql instead of spinning on SQLite's write lock.
	db, err := sqlitedb.Open(abs, sqlitedb.Options{Sync: sqlitedb.Normal})
	if err != nil {
		return nil, err
	}
	if err := sqlitedb.Exec(db, schema+requestIDsSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s is not a usable ratings-stream database: %w", abs, err)
	}
	s := &store{db: db}
	err = sqlitedb.Prepare(db,
		sqlitedb.Statement{Into: &s.upsertAggregate, SQL: `INSERT INTO aggregates (movie_id, partition, count, sum_tenths, source_offset, last_event_ns)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (movie_id) DO UPDATE SET partition = excluded.partition, count = excluded.count,
				sum_tenths = excluded.sum_tenths, source_offset = excluded.source_offset, last_event_ns = excluded.last_event_ns`},
		sqlitedb.Statement{Into: &s.upsertOffset, SQL: positions.UpsertSQL},
		sqlitedb.Statement{Into: &s.upsertMovie, SQL: `INSERT INTO movies (movie_id, title, release_year) VALUES (?, ?, ?)
			ON CONFLICT (movie_id) DO UPDATE SET title = excluded.title, release_year = excluded.release_year`},
		sqlitedb.Statement{Into: &s.deleteMovie, SQL: `DELETE FROM movies WHERE movie_id = ?`},
		sqlitedb.Statement{Into: &s.insertRequestIDs, SQL: insertRequestIDsSQL},
		sqlitedb.Statement{Into: &s.forgetRequestIDs, SQL: forgetRequestIDsSQL},
		sqlitedb.Statement{Into: &s.setRequestIDFloor, SQL: setRequestIDFloorSQL},
	)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *store) Close() error { return s.db.Close() }

// claim records the delivery mode and partition count the state belongs to,
// and refuses a data directory built under different ones: offsets of one
// partitioning, or counts made at-least-once, cannot be continued as if
// they were something else.
func (s *store) claim(ctx context.Context, delivery Delivery, partitions int) error {
	want := map[string]string{"delivery": string(delivery), "ratings_partitions": strconv.Itoa(partitions)}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for k, v := range want {
		var have string
		err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, k).Scan(&have)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)`, k, v); err != nil {
				return err
			}
		case err != nil:
			return err
		case have != v:
			return fmt.Errorf("the state in this data directory was built with %s=%s, not %s; remove the directory (and start from a fresh log) to change it", k, have, v)
		}
	}
	return tx.Commit()
}

// aggregate is one movie's running count and sum.
type aggregate struct {
	MovieID      int64
	Partition    int
	Count        int64
	SumTenths    int64
	SourceOffset int64     // every rating of the movie below this offset is included
	LastEvent    time.Time // event time of the newest rating included

	batch uint64 // last batch that touched it (in memory only)
}

// snapshot loads the state of some partitions: the next offset of each
// (absent when never processed) and the aggregates of their movies.
func (s *store) snapshot(ctx context.Context, partitions []int) (map[int]int64, map[int64]*aggregate, error) {
	offsets := map[int]int64{}
	aggs := map[int64]*aggregate{}
	for _, p := range partitions {
		var next int64
		err := s.db.QueryRowContext(ctx, `SELECT next_offset FROM offsets WHERE topic = ? AND partition = ?`, model.TopicRatings, p).Scan(&next)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return nil, nil, err
		default:
			offsets[p] = next
		}
		rows, err := s.db.QueryContext(ctx, `SELECT movie_id, count, sum_tenths, source_offset, last_event_ns
			FROM aggregates WHERE partition = ?`, p)
		if err != nil {
			return nil, nil, err
		}
		for rows.Next() {
			a := &aggregate{Partition: p}
			var ns int64
			if err := rows.Scan(&a.MovieID, &a.Count, &a.SumTenths, &a.SourceOffset, &ns); err != nil {
				rows.Close()
				return nil, nil, err
			}
			if ns != 0 {
				a.LastEvent = time.Unix(0, ns).UTC()
			}
			aggs[a.MovieID] = a
		}
		if err := rows.Close(); err != nil {
			return nil, nil, err
		}
	}
	return offsets, aggs, nil
}

// commit writes changed aggregates, the next offsets of `ratings`
// partitions (when not nil) and the request ids counted, in one transaction.
func (s *store) commit(ctx context.Context, aggs []*aggregate, offsets map[int]int64, ids map[int]idChanges) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	up := tx.StmtContext(ctx, s.upsertAggregate)
	for _, a := range aggs {
		var ns int64
		if !a.LastEvent.IsZero() {
			ns = a.LastEvent.UnixNano()
		}
		if _, err := up.ExecContext(ctx, a.MovieID, a.Partition, a.Count, a.SumTenths, a.SourceOffset, ns); err != nil {
			return fmt.Errorf("write aggregate of movie %d: %w", a.MovieID, err)
		}
	}
	if offsets != nil {
		off := tx.StmtContext(ctx, s.upsertOffset)
		for p, next := range offsets {
			if _, err := off.ExecContext(ctx, model.TopicRatings, p, next); err != nil {
				return fmt.Errorf("write offset of partition %d: %w", p, err)
			}
		}
	}
	if err := s.saveRequestIDs(ctx, tx, ids); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// loadMovies reads the materialized movies table and its positions.
func (s *store) loadMovies(ctx context.Context) (map[int64]model.Movie, map[int]int64, error) {
	movies := map[int64]model.Movie{}
	rows, err := s.db.QueryContext(ctx, `SELECT movie_id, title, release_year FROM movies`)
	if err != nil {
		return nil, nil, err
	}
	for rows.Next() {
		var m model.Movie
		if err := rows.Scan(&m.ID, &m.Title, &m.ReleaseYear); err != nil {
			rows.Close()
			return nil, nil, err
		}
		movies[m.ID] = m
	}
	if err := rows.Close(); err != nil {
		return nil, nil, err
	}
	pos, err := positions.Read(ctx, s.db, model.TopicMovies)
	return movies, pos, err
}

// applyMovies writes movie changes and the positions they reach.
func (s *store) applyMovies(ctx context.Context, changes []moviestable.Change, pos map[int]int64) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	up, del := tx.StmtContext(ctx, s.upsertMovie), tx.StmtContext(ctx, s.deleteMovie)
	for _, c := range changes {
		if c.Deleted {
			_, err = del.ExecContext(ctx, c.ID)
		} else {
			_, err = up.ExecContext(ctx, c.ID, c.Movie.Title, c.Movie.ReleaseYear)
		}
		if err != nil {
			return fmt.Errorf("movie %d: %w", c.ID, err)
		}
	}
	off := tx.StmtContext(ctx, s.upsertOffset)
	for p, next := range pos {
		if _, err := off.ExecContext(ctx, model.TopicMovies, p, next); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// stateRow is one movie's committed state, for the debugging endpoint.
type stateRow struct {
	MovieID      int64     `json:"movie_id"`
	Partition    int       `json:"partition"`
	Count        int64     `json:"count"`
	SumTenths    int64     `json:"sum_tenths"`
	Average      float64   `json:"average"`
	SourceOffset int64     `json:"source_offset"`
	LastEvent    time.Time `json:"last_event_time"`
}

func (s *store) states(ctx context.Context, movieID int64) ([]stateRow, error) {
	q := `SELECT movie_id, partition, count, sum_tenths, source_offset, last_event_ns FROM aggregates`
	var args []any
	if movieID > 0 {
		q += ` WHERE movie_id = ?`
		args = append(args, movieID)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY movie_id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []stateRow
	for rows.Next() {
		var r stateRow
		var ns int64
		if err := rows.Scan(&r.MovieID, &r.Partition, &r.Count, &r.SumTenths, &r.SourceOffset, &ns); err != nil {
			return nil, err
		}
		if r.Count > 0 {
			r.Average = float64(r.SumTenths) / 10 / float64(r.Count)
		}
		if ns != 0 {
			r.LastEvent = time.Unix(0, ns).UTC()
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ratingOffsets lists the committed next offsets of `ratings`.
func (s *store) ratingOffsets(ctx context.Context) (map[int]int64, error) {
	return positions.Read(ctx, s.db, model.TopicRatings)
}
