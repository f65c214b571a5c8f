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

// Open opens the SQLite file at path, creating it when missing.
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
