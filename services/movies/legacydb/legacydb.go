// Package legacydb is the "legacy relational database" of the movie ratings
// demo: one SQLite file holding the movie catalog. movies-rpc serves it over
// HTTP, movies-connect streams its changes into the compacted movies topic
// (Kafka Connect JDBC source, timestamp+incrementing mode), and `lab data`
// imports and edits it — often all three at once, from separate processes.
//
// Concurrency: the file is in WAL mode, so readers never block the single
// writer and vice versa; writers queue on SQLite's write lock (busy_timeout),
// and every write transaction takes that lock up front (BEGIN IMMEDIATE).
package legacydb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"modernc.org/sqlite" // also registers the "sqlite" driver
)

// ErrNotFound is returned (wrapped) when a movie id is not in the catalog.
var ErrNotFound = errors.New("movie not found")

// ErrExists is returned (wrapped) by Add when the requested id is taken.
var ErrExists = errors.New("movie already exists")

// catalogSchema identifies a file as a Ratings Lab legacy catalog in lab_meta.
const (
	catalogSchema = "ratingslab-legacy-movies"
	schemaVersion = "1"
	// busyTimeout bounds how long a statement waits for another process's
	// write lock before failing with SQLITE_BUSY.
	busyTimeout = 5 * time.Second
)

// DB is an open legacy catalog. It is safe for concurrent use.
type DB struct {
	sql        *sql.DB // reads: deferred transactions, many connections
	w          *sql.DB // writes: BEGIN IMMEDIATE, one connection per process
	path       string
	queryDelay atomic.Int64 // nanoseconds added before every read query
	// movieByID is the one query of every rating (movies-rpc's GET
	// /movies/{id}), prepared once: parsing it per call was a fifth of
	// movies-rpc's CPU. database/sql prepares it on each pooled
	// connection at its first use there.
	movieByID *sql.Stmt
}

// Create opens the catalog at path, creating the file, its schema and the
// seed catalog when the file is new (created reports that). Parent
// directories are created too. An existing file that is not a lab catalog is
// an error and is left untouched. Concurrent Creates of the same new file
// (from any process) seed it exactly once.
func Create(path string) (*DB, bool, error) {
	if path == "" {
		return nil, false, errors.New("legacydb: path is empty")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, false, fmt.Errorf("legacydb: %w", err)
	}
	db, err := open(path, "rwc")
	if err != nil {
		return nil, false, err
	}
	ctx := context.Background()
	var created bool
	err = retryBusy(ctx, func() error {
		created, err = db.initialize(ctx)
		return err
	})
	if err == nil {
		err = db.ensureWAL(ctx)
	}
	if err == nil {
		err = db.prepare(ctx)
	}
	if err != nil {
		db.Close()
		return nil, false, err
	}
	return db, created, nil
}

// Open opens an existing catalog. A missing file, or a file that is not a lab
// catalog (not SQLite, or without the lab_meta marker), is an error, and such
// a file is left untouched.
func Open(path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("legacydb: path is empty")
	}
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("legacydb: no movie catalog at %s (create it with `lab data` or `lab up`)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("legacydb: %w", err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("legacydb: %s is a directory, not a movie catalog", path)
	}
	db, err := open(path, "rw")
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	err = retryBusy(ctx, func() error { return db.checkMeta(ctx, db.sql) })
	if err == nil {
		err = db.ensureWAL(ctx)
	}
	if err == nil {
		err = db.prepare(ctx)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// open makes the two connection pools; nothing touches the file yet.
func open(path, mode string) (*DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("legacydb: %w", err)
	}
	q := url.Values{}
	q.Set("mode", mode)
	q.Set("_busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()))
	q.Set("_synchronous", "NORMAL") // in WAL mode: durable at checkpoints, never corrupt
	file := "file:" + (&url.URL{Path: abs}).EscapedPath() + "?"
	r, err := sql.Open("sqlite", file+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("legacydb: open %s: %w", path, err)
	}
	// Writers take the write lock at BEGIN, so the timestamp a transaction
	// reads is never stale by the time it commits (see Changes). One
	// connection: in-process writers queue in database/sql instead of
	// spinning on SQLITE_BUSY.
	q.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", file+q.Encode())
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("legacydb: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	return &DB{sql: r, w: w, path: path}, nil
}

// ensureWAL puts the file in WAL mode (a persistent property of the file):
// readers in other processes then never block the writer, nor it them. The
// switch needs the file to itself for a moment, hence the retry.
func (db *DB) ensureWAL(ctx context.Context) error {
	var mode string
	err := retryBusy(ctx, func() error {
		return db.sql.QueryRowContext(ctx, `PRAGMA journal_mode = WAL`).Scan(&mode)
	})
	if err != nil {
		return fmt.Errorf("legacydb: %s: switch to WAL: %w", db.path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("legacydb: %s: journal mode is %q, want wal", db.path, mode)
	}
	return nil
}

// retryBusy runs fn again while SQLite reports the file busy or locked in a
// way its busy handler does not cover (opening a file another process is
// creating or switching to WAL), for at most busyTimeout.
func retryBusy(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(busyTimeout)
	wait := 5 * time.Millisecond
	for {
		err := fn()
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// SQLite primary result codes (the low byte of an extended code).
const (
	sqliteBusy   = 5
	sqliteLocked = 6
)

func isBusy(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	code := e.Code() & 0xff
	return code == sqliteBusy || code == sqliteLocked
}

// prepare prepares the hot read once the schema is there.
func (db *DB) prepare(ctx context.Context) (err error) {
	db.movieByID, err = db.sql.PrepareContext(ctx, `SELECT `+movieColumns+` FROM movies WHERE movie_id = ?`)
	if err != nil {
		return fmt.Errorf("legacydb: %s: prepare: %w", db.path, err)
	}
	return nil
}

// Close releases the file. In-flight queries finish first.
func (db *DB) Close() error {
	var err error
	if db.movieByID != nil {
		err = db.movieByID.Close()
	}
	return errors.Join(err, db.w.Close(), db.sql.Close())
}

// Path is the file the catalog lives in.
func (db *DB) Path() string { return db.path }

// Ping proves the file is readable. It is not slowed by SetQueryDelay, so a
// health check tells "slow" apart from "down".
func (db *DB) Ping(ctx context.Context) error {
	var v string
	err := db.sql.QueryRowContext(ctx, `SELECT value FROM lab_meta WHERE key = 'schema'`).Scan(&v)
	if err != nil {
		return fmt.Errorf("legacydb: %w", err)
	}
	return nil
}

// SetQueryDelay makes every later read query (Movie, Movies, Changes) wait d
// first: the "slow legacy DB" fault. Zero or negative turns it off.
func (db *DB) SetQueryDelay(d time.Duration) {
	if d < 0 {
		d = 0
	}
	db.queryDelay.Store(int64(d))
}

// QueryDelay is the delay SetQueryDelay installed.
func (db *DB) QueryDelay() time.Duration { return time.Duration(db.queryDelay.Load()) }

// delay waits the configured query delay or until ctx ends.
func (db *DB) delay(ctx context.Context) error {
	d := db.QueryDelay()
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
