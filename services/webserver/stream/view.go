package stream

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/ratingslab/lab/services/lib/kafkaio/moviestable"
	"github.com/ratingslab/lab/services/lib/kafkaio/positions"
	"github.com/ratingslab/lab/services/lib/sqlitedb"
	"github.com/ratingslab/lab/services/model"
)

// view is the webserver's embedded database: the movies table (from the
// compacted `movies` topic) and the rated-movies table (from the compacted
// `rated-movies` topic), each stored with the positions it reached, in the
// same transaction as the rows. A restart resumes from those positions.
type view struct {
	db *sql.DB

	upsertMovie  *sql.Stmt
	deleteMovie  *sql.Stmt
	upsertRated  *sql.Stmt
	advanceRated *sql.Stmt
	replaceRated *sql.Stmt
	moveRated    *sql.Stmt
	upsertOffset *sql.Stmt
}

const viewSchema = positions.Schema + `
CREATE TABLE IF NOT EXISTS movies (
	movie_id     INTEGER PRIMARY KEY,
	title        TEXT    NOT NULL,
	release_year INTEGER NOT NULL,
	country      TEXT    NOT NULL DEFAULT '',
	genres       TEXT    NOT NULL DEFAULT '',
	version      INTEGER NOT NULL DEFAULT 0
);
-- per movie, the rated-movies update with the highest source offset
CREATE TABLE IF NOT EXISTS rated (
	movie_id         INTEGER PRIMARY KEY,
	count            INTEGER NOT NULL,
	sum_tenths       INTEGER NOT NULL,
	source_partition INTEGER NOT NULL,
	source_offset    INTEGER NOT NULL,
	last_event_ns    INTEGER NOT NULL
);
`

// DBFile is the view's database name inside the part's data directory.
const DBFile = "webserver-stream.db"

func openView(dir string) (*view, error) {
	if dir == "" {
		return nil, errors.New("--data: a data directory is required (the view lives there)")
	}
	abs, err := sqlitedb.File(dir, DBFile)
	if err != nil {
		return nil, err
	}
	// Several connections: GETs read in parallel (WAL) while the hydration
	// writes; the writers serialize on SQLite's lock (busy_timeout).
	db, err := sqlitedb.Open(abs, sqlitedb.Options{Sync: sqlitedb.Normal, MaxConns: 8})
	if err != nil {
		return nil, err
	}
	if err := sqlitedb.Exec(db, viewSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s is not a usable view database: %w", abs, err)
	}
	v := &view{db: db}
	err = sqlitedb.Prepare(db,
		sqlitedb.Statement{Into: &v.upsertMovie, SQL: `INSERT INTO movies (movie_id, title, release_year, country, genres, version) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (movie_id) DO UPDATE SET title = excluded.title, release_year = excluded.release_year,
				country = excluded.country, genres = excluded.genres, version = excluded.version`},
		sqlitedb.Statement{Into: &v.deleteMovie, SQL: `DELETE FROM movies WHERE movie_id = ?`},
		// A stale update (lower source offset on the same partition: a
		// re-emit after a crash, or a new owner catching up after a
		// rebalance) leaves the row alone. A newer one that shows the same
		// count and sum (a new owner's batch ended at another offset) only
		// moves the row's offset, with advanceRated: nothing new became
		// visible, so it is not a freshness observation.
		sqlitedb.Statement{Into: &v.upsertRated, SQL: `INSERT INTO rated (movie_id, count, sum_tenths, source_partition, source_offset, last_event_ns)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (movie_id) DO UPDATE SET count = excluded.count, sum_tenths = excluded.sum_tenths,
				source_partition = excluded.source_partition, source_offset = excluded.source_offset,
				last_event_ns = excluded.last_event_ns
			WHERE (excluded.source_offset > rated.source_offset OR excluded.source_partition != rated.source_partition)
				AND (excluded.count != rated.count OR excluded.sum_tenths != rated.sum_tenths)`},
		sqlitedb.Statement{Into: &v.advanceRated, SQL: `UPDATE rated SET source_partition = ?2, source_offset = ?3, last_event_ns = ?4
			WHERE movie_id = ?1 AND (source_offset < ?3 OR source_partition != ?2)`},
		// For a batch whose updates of a movie switch partition: applied one
		// by one, the switch always replaces the row, whatever it held (and
		// is visible only if the count or sum differ).
		sqlitedb.Statement{Into: &v.replaceRated, SQL: `INSERT INTO rated (movie_id, count, sum_tenths, source_partition, source_offset, last_event_ns)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (movie_id) DO UPDATE SET count = excluded.count, sum_tenths = excluded.sum_tenths,
				source_partition = excluded.source_partition, source_offset = excluded.source_offset,
				last_event_ns = excluded.last_event_ns
			WHERE excluded.count != rated.count OR excluded.sum_tenths != rated.sum_tenths`},
		sqlitedb.Statement{Into: &v.moveRated, SQL: `UPDATE rated SET source_partition = ?2, source_offset = ?3, last_event_ns = ?4 WHERE movie_id = ?1`},
		sqlitedb.Statement{Into: &v.upsertOffset, SQL: positions.UpsertSQL},
	)
	if err != nil {
		db.Close()
		return nil, err
	}
	return v, nil
}

func (v *view) Close() error { return v.db.Close() }

// positions are the stored next offsets of topic.
func (v *view) positions(ctx context.Context, topic string) (map[int]int64, error) {
	return positions.Read(ctx, v.db, topic)
}

// loadMovies reads the movies table (the POST validation set).
func (v *view) loadMovies(ctx context.Context) (map[int64]model.Movie, error) {
	rows, err := v.db.QueryContext(ctx, `SELECT movie_id, title, release_year FROM movies`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]model.Movie{}
	for rows.Next() {
		var m model.Movie
		if err := rows.Scan(&m.ID, &m.Title, &m.ReleaseYear); err != nil {
			return nil, err
		}
		out[m.ID] = m
	}
	return out, rows.Err()
}

// applyMovies writes movie changes and the positions they reach.
func (v *view) applyMovies(ctx context.Context, changes []moviestable.Change, pos map[int]int64) error {
	tx, err := v.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	up, del := tx.StmtContext(ctx, v.upsertMovie), tx.StmtContext(ctx, v.deleteMovie)
	for _, c := range changes {
		if c.Deleted {
			_, err = del.ExecContext(ctx, c.ID)
		} else {
			m := c.Movie
			_, err = up.ExecContext(ctx, m.ID, m.Title, m.ReleaseYear, m.Country, strings.Join(m.Genres, "|"), m.Version)
		}
		if err != nil {
			return fmt.Errorf("movie %d: %w", c.ID, err)
		}
	}
	if err := v.storePositions(ctx, tx, model.TopicMovies, pos); err != nil {
		return err
	}
	return tx.Commit()
}

// applyRated stores rated-movies updates and returns those that changed
// what the view shows — a movie's count or sum. The others were stale
// re-emits, were superseded within the batch and so never visible, or
// showed what the view already showed under a newer source offset (a new
// owner after a rebalance counts the same ratings in batches that end
// elsewhere): stored, but nothing a user sees changed.
//
// A batch of ~2,000 records covers at most a few hundred movies, so the
// updates are first reduced in memory to one winner per movie and only the
// winners are written: the rows end up exactly as if every update had been
// upserted in order (see batchWinners).
func (v *view) applyRated(ctx context.Context, updates []model.RatedMovieEvent, pos map[int]int64) ([]model.RatedMovieEvent, error) {
	winners := batchWinners(updates)
	tx, err := v.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	up, advance := tx.StmtContext(ctx, v.upsertRated), tx.StmtContext(ctx, v.advanceRated)
	replace, move := tx.StmtContext(ctx, v.replaceRated), tx.StmtContext(ctx, v.moveRated)
	applied := make([]model.RatedMovieEvent, 0, len(winners))
	for _, w := range winners {
		u := w.RatedMovieEvent
		var ns int64
		if !u.LastEventTime.IsZero() {
			ns = u.LastEventTime.UnixNano()
		}
		visible, unchanged := up, advance
		if w.switched {
			visible, unchanged = replace, move
		}
		res, err := visible.ExecContext(ctx, u.MovieID, u.Count, u.SumTenths, u.SourcePartition, u.SourceOffset, ns)
		if err != nil {
			return nil, fmt.Errorf("rated movie %d: %w", u.MovieID, err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			applied = append(applied, u)
			continue
		}
		// The same count and sum (or a stale update): keep the newer offset.
		if _, err := unchanged.ExecContext(ctx, u.MovieID, u.SourcePartition, u.SourceOffset, ns); err != nil {
			return nil, fmt.Errorf("rated movie %d: %w", u.MovieID, err)
		}
	}
	if err := v.storePositions(ctx, tx, model.TopicRatedMovies, pos); err != nil {
		return nil, err
	}
	return applied, tx.Commit()
}

// ratedWinner is the update of one movie that a batch leaves in the view.
type ratedWinner struct {
	model.RatedMovieEvent
	// switched: the batch changed the movie's source partition before the
	// winner, so the winner replaces the stored row unconditionally (as the
	// switch did when applied one by one); otherwise it is upserted with the
	// stale check against the stored row.
	switched bool
}

// batchWinners folds a batch into one update per movie, in order of first
// appearance, with the view's rule: an update replaces the current one when
// it is on another source partition or has a higher source offset (on a tie
// the earlier one stays). Why this equals upserting every update in order:
// after each upsert the row's partition is that of the last update of the
// movie, whether it applied or not. So an update on another partition than
// the previous one always applies, and from there on the row is known
// (switched); before any switch the row is max(stored, updates so far), and
// applying the batch's max to the stored row gives the same.
func batchWinners(updates []model.RatedMovieEvent) []ratedWinner {
	index := make(map[int64]int, 256)
	winners := make([]ratedWinner, 0, 256)
	for _, u := range updates {
		i, seen := index[u.MovieID]
		if !seen {
			index[u.MovieID] = len(winners)
			winners = append(winners, ratedWinner{RatedMovieEvent: u})
			continue
		}
		w := &winners[i]
		switch {
		case u.SourcePartition != w.SourcePartition:
			*w = ratedWinner{RatedMovieEvent: u, switched: true}
		case u.SourceOffset > w.SourceOffset:
			w.RatedMovieEvent = u
		}
	}
	return winners
}

func (v *view) storePositions(ctx context.Context, tx *sql.Tx, topic string, pos map[int]int64) error {
	off := tx.StmtContext(ctx, v.upsertOffset)
	for p, next := range pos {
		if _, err := off.ExecContext(ctx, topic, p, next); err != nil {
			return fmt.Errorf("store position of %s/%d: %w", topic, p, err)
		}
	}
	return nil
}

const selectRatedMovie = `SELECT m.movie_id, m.title, m.release_year, coalesce(r.count, 0), coalesce(r.sum_tenths, 0)
	FROM movies m LEFT JOIN rated r ON r.movie_id = m.movie_id`

func scanRatedMovie(s interface{ Scan(...any) error }) (model.RatedMovie, error) {
	var m model.Movie
	var cs model.CountAndSum
	if err := s.Scan(&m.ID, &m.Title, &m.ReleaseYear, &cs.Count, &cs.SumTenth); err != nil {
		return model.RatedMovie{}, err
	}
	return model.NewRatedMovie(m, cs), nil
}

// page returns movies ordered by id with their aggregates, and the total.
func (v *view) page(ctx context.Context, offset, limit int) ([]model.RatedMovie, int, error) {
	var total int
	if err := v.db.QueryRowContext(ctx, `SELECT count(*) FROM movies`).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := v.db.QueryContext(ctx, selectRatedMovie+` ORDER BY m.movie_id LIMIT ? OFFSET ?`, limit, offset)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []model.RatedMovie
	for rows.Next() {
		rm, err := scanRatedMovie(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, rm)
	}
	return out, total, rows.Err()
}

// movie returns one movie with its aggregate, or sql.ErrNoRows.
func (v *view) movie(ctx context.Context, id int64) (model.RatedMovie, error) {
	return scanRatedMovie(v.db.QueryRowContext(ctx, selectRatedMovie+` WHERE m.movie_id = ?`, id))
}

// counts are the row counts of both tables (lab_view_rows).
func (v *view) counts(ctx context.Context) (movies, rated int, err error) {
	err = v.db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM movies), (SELECT count(*) FROM rated)`).Scan(&movies, &rated)
	return movies, rated, err
}
