package legacydb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/ratingslab/lab/services/model"
)

// MaxPage bounds limit in Movies and Changes, so one call cannot load the
// whole table into memory by accident.
const MaxPage = 10000

// movieColumns are the columns model.Movie is read from, in scanMovie order.
const movieColumns = `movie_id, title, release_year, country, genres, updated_at, version`

type scanner interface{ Scan(dest ...any) error }

func scanMovie(s scanner) (model.Movie, error) {
	var m model.Movie
	var genres string
	var updatedUS int64
	if err := s.Scan(&m.ID, &m.Title, &m.ReleaseYear, &m.Country, &genres, &updatedUS, &m.Version); err != nil {
		return model.Movie{}, err
	}
	m.Genres = splitList(genres)
	m.UpdatedAt = time.UnixMicro(updatedUS).UTC()
	return m, nil
}

// Movie returns one movie, or an error wrapping ErrNotFound.
func (db *DB) Movie(ctx context.Context, id int64) (model.Movie, error) {
	if err := db.delay(ctx); err != nil {
		return model.Movie{}, err
	}
	m, err := scanMovie(db.movieByID.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return model.Movie{}, fmt.Errorf("movie %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return model.Movie{}, fmt.Errorf("legacydb: movie %d: %w", id, err)
	}
	return m, nil
}

// Movies returns one page of the catalog ordered by id, and how many movies
// the catalog holds. Page and total come from the same snapshot.
func (db *DB) Movies(ctx context.Context, offset, limit int) ([]model.Movie, int, error) {
	if offset < 0 {
		return nil, 0, fmt.Errorf("offset %d must not be negative", offset)
	}
	if limit < 1 || limit > MaxPage {
		return nil, 0, fmt.Errorf("limit %d must be 1..%d", limit, MaxPage)
	}
	if err := db.delay(ctx); err != nil {
		return nil, 0, err
	}
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("legacydb: movies: %w", err)
	}
	defer tx.Rollback()
	var total int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM movies`).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("legacydb: movies: %w", err)
	}
	movies, err := queryMovies(ctx, tx, `SELECT `+movieColumns+` FROM movies ORDER BY movie_id LIMIT ? OFFSET ?`, limit, offset)
	if err != nil {
		return nil, 0, err
	}
	return movies, total, nil
}

// Position is a change-capture cursor: the (updated_at, movie_id) of the last
// row a reader has seen. The zero Position is before every row. It is JSON so
// a connector can store it as its source offset.
type Position struct {
	UpdatedAt int64 `json:"updated_at_us"` // unix microseconds
	ID        int64 `json:"movie_id"`
}

// PositionOf is the cursor just at m.
func PositionOf(m model.Movie) Position {
	return Position{UpdatedAt: m.UpdatedAt.UnixMicro(), ID: m.ID}
}

// Changes returns up to limit movies written after the position `after`, in
// (updated_at, movie_id) order, and the position of the last one returned
// (`after` itself when there is nothing new). This is the Kafka Connect JDBC
// source "timestamp+incrementing" query:
//
//	WHERE (updated_at, movie_id) > (:ts, :id) ORDER BY updated_at, movie_id
//
// Why no committed change is skipped: every write transaction takes SQLite's
// single write lock at BEGIN (BEGIN IMMEDIATE) and only then picks its
// timestamp, as max(now, highest updated_at ever handed out + 1). Writers are
// therefore serialized, and a transaction that commits later always picked
// its timestamp later and got a strictly larger one. A reader's snapshot
// (WAL) holds a prefix of the commit order, so every row not yet seen by a
// reader will carry a timestamp above the reader's position. This is the
// case that breaks timestamp mode on server databases — a long transaction
// stamps a row at its start and commits after a reader has already moved
// past that timestamp — and it cannot happen here because no two write
// transactions overlap. A wall clock stepping backwards is absorbed by the +1.
//
// Limits, as with the real connector:
//   - Deletes are not captured: a deleted row simply stops appearing. (This
//     package never deletes; a row removed by hand never becomes a tombstone.)
//   - Only the latest state of a row is seen: several edits between two polls
//     arrive as one change with the newest version.
//   - Writers that bypass this package (the sqlite3 shell) do not follow the
//     timestamp rule, and their rows may be missed.
func (db *DB) Changes(ctx context.Context, after Position, limit int) ([]model.Movie, Position, error) {
	if limit < 1 || limit > MaxPage {
		return nil, after, fmt.Errorf("limit %d must be 1..%d", limit, MaxPage)
	}
	if err := db.delay(ctx); err != nil {
		return nil, after, err
	}
	movies, err := queryMovies(ctx, db.sql, `SELECT `+movieColumns+` FROM movies
		WHERE (updated_at, movie_id) > (?, ?)
		ORDER BY updated_at, movie_id LIMIT ?`, after.UpdatedAt, after.ID, limit)
	if err != nil {
		return nil, after, err
	}
	next := after
	if len(movies) > 0 {
		next = PositionOf(movies[len(movies)-1])
	}
	return movies, next, nil
}

type rowsQueryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func queryMovies(ctx context.Context, q rowsQueryer, query string, args ...any) ([]model.Movie, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("legacydb: %w", err)
	}
	defer rows.Close()
	var movies []model.Movie
	for rows.Next() {
		m, err := scanMovie(rows)
		if err != nil {
			return nil, fmt.Errorf("legacydb: %w", err)
		}
		movies = append(movies, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("legacydb: %w", err)
	}
	return movies, nil
}

// Add inserts a new movie at version 1 and returns it as stored. ID 0 takes
// the next free id; an id already in use is an error wrapping ErrExists.
// UpdatedAt and Version of m are ignored.
func (db *DB) Add(ctx context.Context, m model.Movie) (model.Movie, error) {
	if err := CheckNew(m); err != nil {
		return model.Movie{}, err
	}
	normalize(&m)
	var id int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		id = m.ID
		if id == 0 {
			if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(movie_id), 0) + 1 FROM movies`).Scan(&id); err != nil {
				return err
			}
		} else {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM movies WHERE movie_id = ?`, id).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return fmt.Errorf("movie_id %d: %w", id, ErrExists)
			}
		}
		r := record{Movie: m}
		r.ID = id
		_, err := upsert(ctx, tx, []record{r}, movieOnlyColumns)
		return err
	})
	if err != nil {
		return model.Movie{}, err
	}
	return db.readBack(ctx, id)
}

// Edit applies edit to the stored movie and writes it back with version+1
// and a new updated_at, even if edit changed nothing (an explicit edit is a
// change event). edit must not change the id. The edited movie is validated
// like Add's; on error nothing is written.
func (db *DB) Edit(ctx context.Context, id int64, edit func(*model.Movie)) (model.Movie, error) {
	err := db.write(ctx, func(tx *sql.Tx) error {
		m, err := scanMovie(tx.QueryRowContext(ctx, `SELECT `+movieColumns+` FROM movies WHERE movie_id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("movie %d: %w", id, ErrNotFound)
		}
		if err != nil {
			return err
		}
		edit(&m)
		if m.ID != id {
			return fmt.Errorf("movie_id cannot be changed (from %d to %d)", id, m.ID)
		}
		normalize(&m)
		if err := validate(m); err != nil {
			return err
		}
		ts, err := nextTimestamp(ctx, tx)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE movies SET title = ?, release_year = ?, country = ?, genres = ?,
			updated_at = ?, version = version + 1 WHERE movie_id = ?`,
			m.Title, m.ReleaseYear, m.Country, joinList(m.Genres), ts, id)
		return err
	})
	if err != nil {
		return model.Movie{}, err
	}
	return db.readBack(ctx, id)
}

// readBack reads a movie just written, without the query delay fault.
func (db *DB) readBack(ctx context.Context, id int64) (model.Movie, error) {
	m, err := scanMovie(db.movieByID.QueryRowContext(ctx, id))
	if err != nil {
		return model.Movie{}, fmt.Errorf("legacydb: read back movie %d: %w", id, err)
	}
	return m, nil
}

// write runs fn in a write transaction (BEGIN IMMEDIATE: the write lock is
// held from the start) and commits it. Errors from fn are returned as they
// are; database errors are prefixed.
func (db *DB) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("legacydb: begin: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("legacydb: commit: %w", err)
	}
	return nil
}

// nextTimestamp picks the updated_at of the current write transaction and
// records it as the high-water mark: max(now, high water + 1, newest row +
// 1). It must run under the write lock (see Changes for why).
func nextTimestamp(ctx context.Context, tx *sql.Tx) (int64, error) {
	var ts int64
	err := tx.QueryRowContext(ctx, `SELECT max(?,
		coalesce((SELECT max(updated_at) FROM movies), 0) + 1,
		coalesce((SELECT CAST(value AS INTEGER) FROM lab_meta WHERE key = ?), 0) + 1)`,
		time.Now().UnixMicro(), metaHighWater).Scan(&ts)
	if err != nil {
		return 0, fmt.Errorf("legacydb: timestamp: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO lab_meta (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, metaHighWater, fmt.Sprint(ts)); err != nil {
		return 0, fmt.Errorf("legacydb: timestamp: %w", err)
	}
	return ts, nil
}

// normalize trims what users type by accident: spaces around the title,
// country and each genre, and empty genres.
func normalize(m *model.Movie) {
	m.Title = strings.TrimSpace(m.Title)
	m.Country = strings.TrimSpace(m.Country)
	var genres []string
	for _, g := range m.Genres {
		if g = strings.TrimSpace(g); g != "" {
			genres = append(genres, g)
		}
	}
	m.Genres = genres
}

// CheckNew reports whether Add would accept m (ID 0 takes the next free
// id), naming the wrong field by its JSON name (movie_id, title,
// release_year, country, genres): experiments check a movie they will add
// before anything is injected.
func CheckNew(m model.Movie) error {
	if m.ID < 0 {
		return fmt.Errorf("movie_id %d must be positive (or left out for the next free id)", m.ID)
	}
	normalize(&m)
	if m.ID == 0 {
		m.ID = 1 // its other fields are what is checked
	}
	return validate(m)
}

// validate checks the fields every stored movie must satisfy, naming the
// field that is wrong.
func validate(m model.Movie) error {
	if m.ID <= 0 {
		return fmt.Errorf("movie_id %d must be positive", m.ID)
	}
	if strings.TrimSpace(m.Title) == "" {
		return errors.New("title must not be empty")
	}
	if err := plainText("title", m.Title); err != nil {
		return err
	}
	if err := plainText("country", m.Country); err != nil {
		return err
	}
	if m.ReleaseYear < MinYear || m.ReleaseYear > MaxYear {
		return fmt.Errorf("release_year %d is out of range %d..%d", m.ReleaseYear, MinYear, MaxYear)
	}
	if strings.Contains(m.Country, "|") {
		return fmt.Errorf("country %q must not contain '|'", m.Country)
	}
	for _, g := range m.Genres {
		if strings.TrimSpace(g) == "" {
			return errors.New("genres must not contain an empty genre")
		}
		if strings.Contains(g, "|") {
			return fmt.Errorf("genres: genre %q must not contain '|'", g)
		}
		if err := plainText("genres", g); err != nil {
			return err
		}
	}
	return nil
}

// plainText refuses control characters (NUL, tabs, newlines, escapes) in a
// text field: they would reach every view, page and topic as they are.
func plainText(field, v string) error {
	for i, r := range v {
		if unicode.IsControl(r) {
			return fmt.Errorf("%s contains a control character (%U) at byte %d", field, r, i)
		}
	}
	return nil
}

// Release years the catalog accepts.
const (
	MinYear = 1870
	MaxYear = 2100
)

// splitList and joinList convert the '|'-separated list columns.
func splitList(s string) []string {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, "|")
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func joinList(l []string) string { return strings.Join(l, "|") }
