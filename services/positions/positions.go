// Package positions keeps a consumer's next offsets per topic partition in
// the same SQLite store as the state built from them, so that state and
// position commit in one transaction and a restart resumes exactly where the
// state ends.
package positions

import (
	"context"
	"database/sql"
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
