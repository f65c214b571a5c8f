package stream

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ratingslab/lab/services/lib/requestids"
)

// The request ids each partition counted (services/lib/requestids), stored
// with the state and offsets in the batch's transaction: a restart resumes
// with exactly the record the state was built with.

const requestIDsSchema = `
-- per ratings partition, the request ids counted within the retention
-- (services/lib/requestids): one block per committed batch, entries encoded by
-- requestids.AppendEntries, covering offsets first_offset..last_offset
CREATE TABLE IF NOT EXISTS request_id_blocks (
	partition    INTEGER NOT NULL,
	first_offset INTEGER NOT NULL,
	last_offset  INTEGER NOT NULL,
	entries      BLOB    NOT NULL,
	PRIMARY KEY (partition, first_offset)
) WITHOUT ROWID;
-- per partition, the offset below which every entry has left the record
-- (a block partly below it keeps its older entries until it is all below)
CREATE TABLE IF NOT EXISTS request_id_floors (
	partition    INTEGER PRIMARY KEY,
	forget_below INTEGER NOT NULL
);
`

// metaRetention is the meta key of the retention the record was kept with
// (read by `lab replay rebuild`, which folds the log with the same rules).
const metaRetention = "request_id_retention_ms"

// idChanges is what one batch changes in one partition's record.
type idChanges struct {
	added       []requestids.Entry
	forgetBelow int64 // -1: nothing forgotten yet
}

// loadRequestIDs reads one partition's stored record, in offset order.
func (s *store) loadRequestIDs(ctx context.Context, partition int) ([]requestids.Entry, error) {
	return readRequestIDs(ctx, s.db, partition)
}

// querier is a *sql.DB or *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// readRequestIDs reads the kept request ids of one partition from a
// ratings-stream database, in offset order (`lab replay rebuild` folds the
// log onto them as the processor would).
func readRequestIDs(ctx context.Context, q querier, partition int) ([]requestids.Entry, error) {
	var floor int64
	err := q.QueryRowContext(ctx, `SELECT forget_below FROM request_id_floors WHERE partition = ?`, partition).Scan(&floor)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("request ids of partition %d: %w", partition, err)
	}
	rows, err := q.QueryContext(ctx, `SELECT entries FROM request_id_blocks WHERE partition = ? ORDER BY first_offset`, partition)
	if err != nil {
		return nil, fmt.Errorf("request ids of partition %d: %w", partition, err)
	}
	defer rows.Close()
	var out []requestids.Entry
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("request ids of partition %d: %w", partition, err)
		}
		block, err := requestids.DecodeEntries(nil, b)
		if err != nil {
			return nil, fmt.Errorf("request ids of partition %d: %w", partition, err)
		}
		for _, e := range block {
			if e.Offset >= floor {
				out = append(out, e)
			}
		}
	}
	return out, rows.Err()
}

// readRequestIDRetention reads the retention the database's record was
// kept with (requestids.DefaultRetention when it does not say).
func readRequestIDRetention(ctx context.Context, q querier) (time.Duration, error) {
	var v string
	err := q.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, metaRetention).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return requestids.DefaultRetention, nil
	}
	if err != nil {
		return 0, err
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms <= 0 {
		return 0, fmt.Errorf("meta %s: not a number of milliseconds: %q", metaRetention, v)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// saveRequestIDs writes a batch's record changes inside its transaction.
func (s *store) saveRequestIDs(ctx context.Context, tx *sql.Tx, changes map[int]idChanges) error {
	for part, c := range changes {
		if len(c.added) > 0 {
			first, last := c.added[0].Offset, c.added[len(c.added)-1].Offset
			if _, err := tx.StmtContext(ctx, s.insertRequestIDs).ExecContext(ctx, part, first, last, requestids.AppendEntries(nil, c.added)); err != nil {
				return fmt.Errorf("record request ids of partition %d: %w", part, err)
			}
		}
		if c.forgetBelow > 0 {
			if _, err := tx.StmtContext(ctx, s.forgetRequestIDs).ExecContext(ctx, part, c.forgetBelow); err != nil {
				return fmt.Errorf("forget request ids of partition %d: %w", part, err)
			}
			if _, err := tx.StmtContext(ctx, s.setRequestIDFloor).ExecContext(ctx, part, c.forgetBelow); err != nil {
				return fmt.Errorf("forget request ids of partition %d: %w", part, err)
			}
		}
	}
	return nil
}

// Statements of the record, prepared with the store's.
const (
	insertRequestIDsSQL  = `INSERT INTO request_id_blocks (partition, first_offset, last_offset, entries) VALUES (?, ?, ?, ?)`
	forgetRequestIDsSQL  = `DELETE FROM request_id_blocks WHERE partition = ? AND last_offset < ?`
	setRequestIDFloorSQL = `INSERT INTO request_id_floors (partition, forget_below) VALUES (?, ?)
		ON CONFLICT (partition) DO UPDATE SET forget_below = excluded.forget_below`
)

// recordRetention stores the retention this start keeps request ids for.
func (s *store) recordRetention(ctx context.Context, retention time.Duration) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, metaRetention, strconv.FormatInt(retention.Milliseconds(), 10))
	return err
}
