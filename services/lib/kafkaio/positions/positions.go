// Package positions keeps a consumer's next offsets per topic partition in
// the same SQLite store as the state built from them, so that state and
// position commit in one transaction and a restart resumes exactly where the
// state ends.
package positions

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/ratingslab/lab/services/lib/sqlitedb"
)

// Schema creates the offsets table; include it in the store's schema.
const Schema = `
-- next offset to process per topic partition: the position the state includes
CREATE TABLE IF NOT EXISTS offsets (
	topic       TEXT    NOT NULL,
	partition   INTEGER NOT NULL,
	next_offset INTEGER NOT NULL,
	PRIMARY KEY (topic, partition)
) WITHOUT ROWID;
`

// UpsertSQL records one partition's next offset: (topic, partition, next_offset).
const UpsertSQL = `INSERT INTO offsets (topic, partition, next_offset) VALUES (?, ?, ?)
	ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset`

// Querier is a *sql.DB or *sql.Tx.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Read returns the stored next offset of every partition of topic; a
// partition never processed is absent.
func Read(ctx context.Context, q Querier, topic string) (map[int]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT partition, next_offset FROM offsets WHERE topic = ?`, topic)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int]int64{}
	for rows.Next() {
		var p int
		var next int64
		if err := rows.Scan(&p, &next); err != nil {
			return nil, err
		}
		out[p] = next
	}
	return out, rows.Err()
}

// ReadAll returns the stored next offset of every partition of every
// topic: topic → partition → next offset.
func ReadAll(ctx context.Context, q Querier) (map[string]map[int]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT topic, partition, next_offset FROM offsets`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]map[int]int64{}
	for rows.Next() {
		var topic string
		var p int
		var next int64
		if err := rows.Scan(&topic, &p, &next); err != nil {
			return nil, err
		}
		if out[topic] == nil {
			out[topic] = map[int]int64{}
		}
		out[topic][p] = next
	}
	return out, rows.Err()
}

// ReadFile reads the stored positions of topic from the SQLite store at
// path, opened read-only, for tools outside the owning process (the lab's
// lag meter): they read what the consumer durably recorded without
// touching its tables' SQL. A store without an offsets table yet (a
// consumer that never committed) has no positions.
func ReadFile(ctx context.Context, path, topic string) (map[int]int64, error) {
	db, err := sqlitedb.OpenReadOnly(path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'offsets'`).Scan(&n); err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	if n == 0 {
		return map[int]int64{}, nil
	}
	pos, err := Read(ctx, db, topic)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	return pos, nil
}
