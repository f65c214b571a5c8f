package sqlitedb_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ratingslab/lab/services/lib/sqlitedb"
)

func openCounter(t *testing.T, gather time.Duration) *sqlitedb.GroupCommit[int, int] {
	t.Helper()
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "ops.db"), sqlitedb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlitedb.Exec(db, `CREATE TABLE ops (op INTEGER PRIMARY KEY);`); err != nil {
		t.Fatal(err)
	}
	g := sqlitedb.NewGatheringGroupCommit(db, 64, gather, func(ctx context.Context, tx *sql.Tx, ops []int, _ []int) error {
		for _, op := range ops {
			if _, err := tx.ExecContext(ctx, `INSERT INTO ops (op) VALUES (?)`, op); err != nil {
				return err
			}
		}
		return nil
	})
	t.Cleanup(func() { g.Close(); db.Close() })
	return g
}

// A gathering group commit: operations arriving while the store is busy
// (within gather of the last COMMIT) share one transaction, though they
// came one by one; an operation at a store idle for longer commits at
// once, without waiting for company.
func TestAGatheringGroupCommitBatchesWhileBusyAndNotWhenIdle(t *testing.T) {
	t.Parallel()
	const gather = 300 * time.Millisecond
	g := openCounter(t, gather)
	ctx := context.Background()

	time.Sleep(gather) // idle since it opened
	start := time.Now()
	if _, err := g.Do(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > gather/2 {
		t.Errorf("an operation at an idle store took %s: it waited for company (gather %s)", took, gather)
	}

	// Busy now: ten operations 10 ms apart, all within gather of that COMMIT.
	b0, _ := g.Batches()
	var wg sync.WaitGroup
	for i := 1; i <= 10; i++ {
		wg.Go(func() {
			if _, err := g.Do(ctx, i); err != nil {
				t.Error(err)
			}
		})
		time.Sleep(10 * time.Millisecond)
	}
	wg.Wait()
	if b1, _ := g.Batches(); b1-b0 != 1 {
		t.Errorf("ten operations arriving one by one while the store was busy took %d transactions, want 1", b1-b0)
	}
}
