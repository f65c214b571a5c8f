package stream

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/ratingslab/lab/services/lib/kafkaio/changelog"
	"github.com/ratingslab/lab/services/lib/requestids"
	"github.com/ratingslab/lab/services/model"
)

// replaceRequestIDs makes the database's request-id record of restored
// partitions the changelog's (transactional mode: the database is a cache
// of the changelog, and `lab replay` reads the record from it).
func (s *store) replaceRequestIDs(ctx context.Context, restored map[int]*changelog.Partition) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := s.replaceRequestIDsTx(ctx, tx, restored); err != nil {
		return err
	}
	return tx.Commit()
}

func (s *store) replaceRequestIDsTx(ctx context.Context, tx *sql.Tx, restored map[int]*changelog.Partition) error {
	for part, st := range restored {
		if _, err := tx.ExecContext(ctx, `DELETE FROM request_id_blocks WHERE partition = ?`, part); err != nil {
			return fmt.Errorf("request ids of partition %d: %w", part, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM request_id_floors WHERE partition = ?`, part); err != nil {
			return fmt.Errorf("request ids of partition %d: %w", part, err)
		}
		entries := st.Entries()
		if len(entries) == 0 {
			continue
		}
		if _, err := tx.StmtContext(ctx, s.insertRequestIDs).ExecContext(ctx, part, entries[0].Offset, entries[len(entries)-1].Offset,
			requestids.AppendEntries(nil, entries)); err != nil {
			return fmt.Errorf("request ids of partition %d: %w", part, err)
		}
	}
	return nil
}

// adoptPartitions makes the changelog's state of some partitions the
// database's, in one transaction: their aggregates, next offsets and
// request-id records are replaced (effectively-once restore: the changelog
// was ahead of this instance's own snapshot).
func (s *store) adoptPartitions(ctx context.Context, restored map[int]*changelog.Partition) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	up, off := tx.StmtContext(ctx, s.upsertAggregate), tx.StmtContext(ctx, s.upsertOffset)
	for part, st := range restored {
		if _, err := tx.ExecContext(ctx, `DELETE FROM aggregates WHERE partition = ?`, part); err != nil {
			return fmt.Errorf("aggregates of partition %d: %w", part, err)
		}
		for _, a := range st.Movies {
			var ns int64
			if !a.LastEvent.IsZero() {
				ns = a.LastEvent.UnixNano()
			}
			if _, err := up.ExecContext(ctx, a.MovieID, part, a.Count, a.SumTenths, a.SourceOffset, ns); err != nil {
				return fmt.Errorf("aggregate of movie %d: %w", a.MovieID, err)
			}
		}
		if _, err := off.ExecContext(ctx, model.TopicRatings, part, st.Next); err != nil {
			return fmt.Errorf("offset of partition %d: %w", part, err)
		}
	}
	if err := s.replaceRequestIDsTx(ctx, tx, restored); err != nil {
		return err
	}
	return tx.Commit()
}
