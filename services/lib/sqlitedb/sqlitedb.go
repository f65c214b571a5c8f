// Package sqlitedb opens the services' own SQLite files the one way they all
// want them: WAL (readers never block the writer), a bounded busy_timeout,
// an explicit synchronous setting, and write transactions that take the
// write lock at BEGIN so they queue instead of failing half-way.
package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Sync is SQLite's synchronous setting.
type Sync string

const (
	// Normal in WAL mode: a committed transaction survives the process
	// being killed (kill -9); only a power cut can lose the last commits.
	Normal Sync = "NORMAL"
	// Full fsyncs every commit: survives power cuts too, at a fraction of
	// the write rate.
	Full Sync = "FULL"
)

// Options say how a file is opened. The zero value is one writer
// connection with synchronous NORMAL.
type Options struct {
	Sync Sync // Normal when empty
	// Pragmas are set on every connection after the common ones, e.g.
	// "foreign_keys(ON)".
	Pragmas []string
	// Deferred transactions take the write lock only when they first write
	// (readers); otherwise BEGIN is IMMEDIATE (writers).
	Deferred bool
	// MaxConns bounds the pool; 0 means one connection, so in-process
	// writers queue in database/sql instead of spinning on SQLite's lock.
	MaxConns int
}

// busyTimeout bounds how long a statement waits for another connection's
// write lock before failing with SQLITE_BUSY.
const busyTimeout = 5 * time.Second

// setupTimeout bounds creating the schema and preparing statements.
const setupTimeout = 10 * time.Second

// File creates dir when needed and returns the absolute path of name in it.
func File(dir, name string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("--data %s: %w", dir, err)
	}
	return filepath.Abs(filepath.Join(dir, name))
}

// Open opens the SQLite file at path, creating it when missing, and checks
// its integrity (Check): a damaged file is a *CorruptError naming it.
func Open(path string, o Options) (*sql.DB, error) {
	sync := o.Sync
	if sync == "" {
		sync = Normal
	}
	if sync != Normal && sync != Full {
		return nil, fmt.Errorf("synchronous: want %s or %s, got %q", Normal, Full, sync)
	}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+string(sync)+")")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	for _, p := range o.Pragmas {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	if o.Deferred {
		q.Set("_txlock", "deferred")
	}
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	conns := o.MaxConns
	if conns <= 0 {
		conns = 1
	}
	db.SetMaxOpenConns(conns)
	if err := Check(db, path); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Exec runs schema (CREATE ... IF NOT EXISTS statements) within a bounded time.
func Exec(db *sql.DB, schema string) error {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	_, err := db.ExecContext(ctx, schema)
	return err
}

// Statement is one statement to prepare and where to keep it.
type Statement struct {
	Into **sql.Stmt
	SQL  string
}

// Prepare prepares every statement within a bounded time.
func Prepare(db *sql.DB, stmts ...Statement) error {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	for _, s := range stmts {
		stmt, err := db.PrepareContext(ctx, s.SQL)
		if err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		*s.Into = stmt
	}
	return nil
}

// OpenReadOnly opens an existing SQLite file for queries only, for tools that
// inspect a part's store while it runs (WAL lets them read beside its
// writer). It never creates the file; a missing one is an error that
// wraps os.ErrNotExist.
func OpenReadOnly(path string) (*sql.DB, error) {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("store %s does not exist: %w", path, err)
		}
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "query_only(1)")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: abs}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// ReadOnlyTx is one read transaction on a store opened read-only
// (OpenReadOnly) by a tool outside the process that owns it: every query
// sees the same commit while the owner keeps writing. The owning package
// wraps it in its read API, so its tables' SQL stays with it.
type ReadOnlyTx struct {
	*sql.Tx
	db   *sql.DB
	Path string
}

// BeginReadOnly opens the store at path read-only and begins a read
// transaction; a missing file is an error that wraps os.ErrNotExist.
func BeginReadOnly(ctx context.Context, path string) (*ReadOnlyTx, error) {
	db, err := OpenReadOnly(path)
	if err != nil {
		return nil, err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	return &ReadOnlyTx{Tx: tx, db: db, Path: path}, nil
}

// Close ends the transaction and closes the store.
func (t *ReadOnlyTx) Close() error {
	_ = t.Tx.Rollback()
	return t.db.Close()
}

// Each runs query and calls row for every row it returns; row scans it.
// Errors name the store.
func (t *ReadOnlyTx) Each(ctx context.Context, query string, row func(scan func(dest ...any) error) error) error {
	rows, err := t.QueryContext(ctx, query)
	if err != nil {
		return fmt.Errorf("store %s: %w", t.Path, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows.Scan); err != nil {
			return fmt.Errorf("store %s: %w", t.Path, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store %s: %w", t.Path, err)
	}
	return nil
}

// CorruptError is a store SQLite finds damaged (a failed integrity check,
// "database disk image is malformed", "file is not a database"). It names the
// file, and no retry fixes it (serve.IsPermanent).
type CorruptError struct {
	Path   string
	Detail string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%s is corrupt (%s): remove it to rebuild it, or restore it from a backup", e.Path, e.Detail)
}

// Permanent: a corrupt file stays corrupt.
func (e *CorruptError) Permanent() bool { return true }

// sqliteCoded is what modernc.org/sqlite's errors offer.
type sqliteCoded interface{ Code() int }

// IsCorrupt reports whether err says a store is damaged: a CorruptError, or
// SQLite's SQLITE_CORRUPT (11) or SQLITE_NOTADB (26) from any statement.
func IsCorrupt(err error) bool {
	if err == nil {
		return false
	}
	var ce *CorruptError
	if errors.As(err, &ce) {
		return true
	}
	var coded sqliteCoded
	if errors.As(err, &coded) {
		switch coded.Code() & 0xff {
		case 11, 26:
			return true
		}
	}
	return false
}

// Check runs SQLite's quick integrity check on db (the file at path) within a
// bounded time, so that a damaged store fails its part at start, naming the
// file, rather than at the first query that reaches the bad page.
func Check(db *sql.DB, path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	rows, err := db.QueryContext(ctx, "PRAGMA quick_check")
	if err != nil {
		if IsCorrupt(err) {
			return &CorruptError{Path: path, Detail: err.Error()}
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() && len(problems) < 3 {
		var line string
		if err := rows.Scan(&line); err != nil {
			return &CorruptError{Path: path, Detail: err.Error()}
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return &CorruptError{Path: path, Detail: err.Error()}
	}
	if len(problems) > 0 {
		return &CorruptError{Path: path, Detail: strings.Join(problems, "; ")}
	}
	return nil
}
