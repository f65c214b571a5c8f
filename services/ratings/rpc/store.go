package rpc

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ratingslab/lab/services/lib/sqlitedb"
	"github.com/ratingslab/lab/services/model"
)

// Store is ratings-rpc's own state, one SQLite file in WAL mode:
//
//	applied_requests  every applied request id (the idempotency record)
//	rated_movies      count and sum (tenths) per movie, with the title and
//	                  year movies-rpc returned when the last rating was validated
//
// A rating is applied inside a transaction: the request id is inserted (a
// duplicate inserts nothing and changes nothing) and the aggregate updated.
// Apply returns after COMMIT, so an acknowledged rating survives a kill.
//
// Writes are group-committed (sqlitedb.GroupCommit): concurrent ratings
// share one transaction (at most maxBatch), and each Apply still returns
// only after the COMMIT of the transaction that holds its rating.
type Store struct {
	path string
	w    *sql.DB // one connection, owned by the committer
	r    *sql.DB // reads: WAL readers never block the writer

	insertRequest, upsertMovie *sql.Stmt // prepared on w
	firstUse                   *sql.Stmt

	writes  *sqlitedb.GroupCommit[write, bool]
	applied atomic.Int64 // ratings written (Stats)

	seen       seenFilter // spares FirstUse's read for most new ids
	stopLoad   context.CancelFunc
	loadEnded  chan struct{}
	seenLoaded chan struct{} // closed once seen answers (tests)
}

// maxBatch bounds the ratings in one transaction (and so how long one
// commit holds the ratings behind it).
const maxBatch = 256

// write is one rating waiting for its batch.
type write struct {
	rating model.Rating
	movie  model.Movie
}

// SyncMode is SQLite's synchronous setting for the store.
//   - "normal": a commit survives the process being killed (the WAL is in
//     the OS page cache), not a power cut. The lab's faults kill processes.
//   - "full": a commit is fsynced before the answer; survives power cuts too,
//     at a fraction of the write rate.
type SyncMode string

const (
	SyncNormal SyncMode = "normal"
	SyncFull   SyncMode = "full"
)

const schema = `
CREATE TABLE IF NOT EXISTS applied_requests (
	request_id    TEXT    PRIMARY KEY,
	movie_id      INTEGER NOT NULL,
	rating_tenths INTEGER NOT NULL,
	user_id       INTEGER NOT NULL,
	applied_at_us INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rated_movies (
	movie_id     INTEGER PRIMARY KEY,
	title        TEXT    NOT NULL,
	release_year INTEGER NOT NULL,
	count        INTEGER NOT NULL,
	sum_tenths   INTEGER NOT NULL
);`

// DBFile is the store's name inside the part's data directory.
const DBFile = "ratings.db"

// OpenStore opens (creating when needed) the store in dir/ratings.db.
func OpenStore(dir string, sync SyncMode) (*Store, error) {
	if dir == "" {
		return nil, errors.New("--data: directory is empty")
	}
	if sync != SyncNormal && sync != SyncFull {
		return nil, fmt.Errorf("--sync: want normal or full, got %q", sync)
	}
	abs, err := sqlitedb.File(dir, DBFile)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, DBFile)
	o := sqlitedb.Options{Sync: sqlitedb.Sync(strings.ToUpper(string(sync))), Pragmas: []string{"foreign_keys(ON)"}}
	w, err := sqlitedb.Open(abs, o) // one connection, BEGIN IMMEDIATE
	if err != nil {
		return nil, fmt.Errorf("ratings store %s: %w", path, err)
	}
	o.Deferred, o.MaxConns = true, 8
	r, err := sqlitedb.Open(abs, o)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("ratings store %s: %w", path, err)
	}
	s := &Store{path: path, w: w, r: r}
	if err := sqlitedb.Exec(w, schema); err != nil {
		errors.Join(w.Close(), r.Close())
		return nil, fmt.Errorf("ratings store %s: schema: %w", path, err)
	}
	if err := sqlitedb.Prepare(w,
		sqlitedb.Statement{Into: &s.insertRequest, SQL: insertRequestSQL},
		sqlitedb.Statement{Into: &s.upsertMovie, SQL: upsertMovieSQL},
	); err != nil {
		errors.Join(w.Close(), r.Close())
		return nil, fmt.Errorf("ratings store %s: %w", path, err)
	}
	if err := sqlitedb.Prepare(r, sqlitedb.Statement{Into: &s.firstUse, SQL: firstUseSQL}); err != nil {
		errors.Join(w.Close(), r.Close())
		return nil, fmt.Errorf("ratings store %s: %w", path, err)
	}
	s.writes = sqlitedb.NewGroupCommit(w, maxBatch, s.applyBatch)
	// Reading every applied id takes a while on a big store: the part
	// serves meanwhile, and FirstUse reads until the filter is loaded.
	var lctx context.Context
	lctx, s.stopLoad = context.WithCancel(context.Background())
	s.loadEnded, s.seenLoaded = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.loadEnded)
		if err := s.seen.load(lctx, r); err == nil {
			close(s.seenLoaded)
		} // else FirstUse keeps reading every id: slower, as exact
	}()
	return s, nil
}

const (
	insertRequestSQL = `INSERT INTO applied_requests (request_id, movie_id, rating_tenths, user_id, applied_at_us)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (request_id) DO NOTHING`
	upsertMovieSQL = `INSERT INTO rated_movies (movie_id, title, release_year, count, sum_tenths)
		VALUES (?, ?, ?, 1, ?)
		ON CONFLICT (movie_id) DO UPDATE SET title = excluded.title, release_year = excluded.release_year,
			count = count + 1, sum_tenths = sum_tenths + excluded.sum_tenths`
	firstUseSQL = `SELECT movie_id, rating_tenths, user_id, applied_at_us FROM applied_requests WHERE request_id = ?`
)

// Close stops the committer (after the batch it is writing) and closes the
// database. Apply after Close fails.
func (s *Store) Close() error {
	s.stopLoad()
	<-s.loadEnded
	s.writes.Close()
	return errors.Join(s.w.Close(), s.r.Close())
}

// StoreStats count the store's write transactions.
type StoreStats struct {
	Batches int64 // transactions committed
	Applied int64 // ratings they applied (repeats excluded)
}

// Stats says how many transactions the store committed and how many
// ratings they applied: Applied/Batches is the mean batch.
func (s *Store) Stats() StoreStats {
	batches, _ := s.writes.Batches()
	return StoreStats{Batches: batches, Applied: s.applied.Load()}
}

// Path is the store's file.
func (s *Store) Path() string { return s.path }

// Ping proves the store is readable.
func (s *Store) Ping(ctx context.Context) error {
	var n int
	return s.r.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master`).Scan(&n)
}

// FirstUse returns the rating a request id was applied with and when;
// found is false when the request id was never applied.
func (s *Store) FirstUse(ctx context.Context, requestID string) (first model.Rating, at time.Time, found bool, err error) {
	if !s.seen.mayHave(requestID) {
		return model.Rating{}, time.Time{}, false, nil // certainly never applied
	}
	var us int64
	first.RequestID = requestID
	err = s.firstUse.QueryRowContext(ctx, requestID).
		Scan(&first.MovieID, &first.Tenths, &first.UserID, &us)
	if errors.Is(err, sql.ErrNoRows) {
		return model.Rating{}, time.Time{}, false, nil
	}
	if err != nil {
		return model.Rating{}, time.Time{}, false, fmt.Errorf("ratings store: %w", err)
	}
	return first, time.UnixMicro(us).UTC(), true, nil
}

// Apply records rating r of movie m exactly once per request id. applied is
// false when the request id was applied before (nothing changed then; see
// FirstUse for what it named). It returns after the rating's transaction
// committed (or failed); a ctx that ends before the rating joins a batch
// leaves it unwritten, one that ends later changes nothing.
func (s *Store) Apply(ctx context.Context, r model.Rating, m model.Movie) (applied bool, err error) {
	applied, err = s.writes.Do(ctx, write{rating: r, movie: m})
	if err != nil {
		return false, fmt.Errorf("ratings store: %w", err)
	}
	if applied {
		s.applied.Add(1)
	}
	return applied, nil
}

// applyBatch writes a batch of ratings in tx: each request id is inserted
// (a duplicate inserts nothing) and, when new, its movie's aggregate
// updated.
func (s *Store) applyBatch(ctx context.Context, tx *sql.Tx, batch []write, applied []bool) error {
	ins, ups := tx.StmtContext(ctx, s.insertRequest), tx.StmtContext(ctx, s.upsertMovie)
	now := time.Now().UnixMicro()
	for i, w := range batch {
		r, m := w.rating, w.movie
		res, err := ins.ExecContext(ctx, r.RequestID, r.MovieID, r.Tenths, r.UserID, now)
		if err != nil {
			return fmt.Errorf("record request: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("record request: %w", err)
		} else if n == 0 {
			continue // applied before (or earlier in this batch): nothing to do
		}
		s.seen.add(r.RequestID) // before COMMIT: once the rating is acknowledged, FirstUse reads it
		if _, err := ups.ExecContext(ctx, m.ID, m.Title, m.ReleaseYear, r.Tenths); err != nil {
			return fmt.Errorf("update movie %d: %w", m.ID, err)
		}
		applied[i] = true
	}
	return nil
}

// RatedMovie returns the aggregate of one movie with its cached title;
// found is false when the movie was never rated.
func (s *Store) RatedMovie(ctx context.Context, id int64) (rm model.RatedMovie, found bool, err error) {
	m, cs := model.Movie{ID: id}, model.CountAndSum{}
	err = s.r.QueryRowContext(ctx, `SELECT title, release_year, count, sum_tenths FROM rated_movies WHERE movie_id = ?`, id).
		Scan(&m.Title, &m.ReleaseYear, &cs.Count, &cs.SumTenth)
	if errors.Is(err, sql.ErrNoRows) {
		return model.RatedMovie{}, false, nil
	}
	if err != nil {
		return model.RatedMovie{}, false, fmt.Errorf("ratings store: movie %d: %w", id, err)
	}
	return model.NewRatedMovie(m, cs), true, nil
}

// Aggregates returns count and sum of the given movies; unrated ones are absent.
func (s *Store) Aggregates(ctx context.Context, ids []int64) (map[int64]model.CountAndSum, error) {
	out := make(map[int64]model.CountAndSum, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := s.r.QueryContext(ctx, `SELECT movie_id, count, sum_tenths FROM rated_movies
		WHERE movie_id IN (`+strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("ratings store: aggregates: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var cs model.CountAndSum
		if err := rows.Scan(&id, &cs.Count, &cs.SumTenth); err != nil {
			return nil, fmt.Errorf("ratings store: aggregates: %w", err)
		}
		out[id] = cs
	}
	return out, rows.Err()
}

// RatedMovies returns one page of the movies rated so far (with their cached
// titles), ordered by id, and how many there are: the list when the catalog
// cannot be asked.
func (s *Store) RatedMovies(ctx context.Context, offset, limit int) ([]model.RatedMovie, int, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true}) // page and total from one snapshot
	if err != nil {
		return nil, 0, fmt.Errorf("ratings store: %w", err)
	}
	defer tx.Rollback()
	var total int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM rated_movies`).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("ratings store: count: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT movie_id, title, release_year, count, sum_tenths FROM rated_movies
		ORDER BY movie_id LIMIT ? OFFSET ?`, limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("ratings store: page: %w", err)
	}
	defer rows.Close()
	var out []model.RatedMovie
	for rows.Next() {
		var m model.Movie
		var cs model.CountAndSum
		if err := rows.Scan(&m.ID, &m.Title, &m.ReleaseYear, &cs.Count, &cs.SumTenth); err != nil {
			return nil, 0, fmt.Errorf("ratings store: page: %w", err)
		}
		out = append(out, model.NewRatedMovie(m, cs))
	}
	return out, total, rows.Err()
}
