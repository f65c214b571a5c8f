package stream

import (
	"context"
	"fmt"

	"github.com/ratingslab/lab/services/changelog"
	"github.com/ratingslab/lab/services/requestids"
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
	return tx.Commit()
}
