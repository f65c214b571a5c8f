package stream

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

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

// checkRequestIDsRetention refuses to start when the request-id topic
// keeps its records for less than the request ids are kept: a take-over
// would restore a record missing ids still within their retention, and
// count their repeats again. The topic's config is not changed from here:
// it is the lab's (model.Topics), shared by every instance.
func (p *Processor) checkRequestIDsRetention(ctx context.Context) error {
	topic := p.cfg.RequestIDs
	res, err := p.k.Client().DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{
		{ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"retention.ms"}}}})
	if err != nil {
		return fmt.Errorf("read retention.ms of %s: %w", topic, err)
	}
	for _, r := range res.Resources {
		if r.Error != nil {
			return fmt.Errorf("read retention.ms of %s: %w", topic, r.Error)
		}
		for _, e := range r.ConfigEntries {
			if e.ConfigName != "retention.ms" {
				continue
			}
			ms, err := strconv.ParseInt(e.ConfigValue, 10, 64)
			if err != nil {
				return fmt.Errorf("retention.ms of %s: not a number: %q", topic, e.ConfigValue)
			}
			return retentionCovers(topic, ms, p.cfg.RequestIDRetention)
		}
	}
	return fmt.Errorf("read retention.ms of %s: the broker did not answer it", topic)
}

// retentionCovers is the check of a topic's retention.ms (-1: forever)
// against the request-id retention.
func retentionCovers(topic string, retentionMs int64, ids time.Duration) error {
	if retentionMs >= 0 && time.Duration(retentionMs)*time.Millisecond < ids {
		return fmt.Errorf("topic %s keeps records for retention.ms=%d (%s), less than --request-id-retention %s: a restored request-id record would miss ids still kept, and count their repeats again; raise the topic's retention.ms to at least %d or lower --request-id-retention",
			topic, retentionMs, time.Duration(retentionMs)*time.Millisecond, ids, ids.Milliseconds())
	}
	return nil
}
