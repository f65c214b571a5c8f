package rpc_test

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/lib/sqlitedb"
	"github.com/ratingslab/lab/services/model"
	"github.com/ratingslab/lab/services/ratings/rpc"
)

// crashChildEnv makes this test binary the writer process of
// TestGroupCommitSurvivesKill9: it writes to the store in the named dir
// until it is killed.
const crashChildEnv = "RATINGS_RPC_CRASH_CHILD_DIR"

// crashWriters write at once; writers w and w+crashIDs/… share request
// ids, so the same rating is often applied concurrently (often in one batch).
const (
	crashWriters = 64
	crashIDs     = 32
)

// crashRating is the rating with request id c-<k>-<i>: the same payload
// whoever sends it.
func crashRating(k, i int) model.Rating {
	return model.Rating{RequestID: fmt.Sprintf("c-%d-%d", k, i), MovieID: int64(1 + (k*7+i)%20), Tenths: int64(10 + (k+i)%91), UserID: int64(k)}
}

func crashMovie(id int64) model.Movie {
	return model.Movie{ID: id, Title: "movie " + strconv.FormatInt(id, 10), ReleaseYear: 2000}
}

// TestGroupCommitSurvivesKill9 kills ratings-rpc's store with SIGKILL
// while 64 writers keep it committing batches: every rating acknowledged
// (Apply returned applied) before the kill is in the reopened store, and
// the aggregates count every stored request id exactly once — also after
// every rating, acknowledged or not, is sent again (a client's retries).
func TestGroupCommitSurvivesKill9(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	acked := map[string]bool{}
	maxI := 0
	var batches, applied int64
	read := func(line string) {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "ack":
			acked[f[1]] = true
			var k, i int
			fmt.Sscanf(f[1], "c-%d-%d", &k, &i)
			maxI = max(maxI, i)
		case len(f) == 3 && f[0] == "stats":
			batches, _ = strconv.ParseInt(f[1], 10, 64)
			applied, _ = strconv.ParseInt(f[2], 10, 64)
		}
	}
	servetest.KillChildMidWrite(t, crashChildEnv+"="+dir, read, func() bool { return len(acked) >= 2000 })
	if len(acked) < 2000 {
		t.Fatalf("the writer acknowledged only %d ratings before it was killed", len(acked))
	}
	if batches == 0 || float64(applied)/float64(batches) < 1.5 {
		t.Errorf("the writer committed %d ratings in %d transactions: no group commit to test", applied, batches)
	}
	t.Logf("killed after %d acknowledged ratings; %d ratings in %d transactions before the last stats line", len(acked), applied, batches)

	store, err := rpc.OpenStore(dir, rpc.SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	for id := range acked {
		if _, _, found, err := store.FirstUse(ctx, id); err != nil || !found {
			t.Fatalf("acknowledged rating %s is not in the store after the kill (err %v)", id, err)
		}
	}
	checkCountedOnce(t, dir)

	// Every rating again, as retries from many clients at once: only those
	// the kill left unwritten apply.
	retries := make(chan model.Rating)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range crashWriters {
		wg.Go(func() {
			for r := range retries {
				ok, err := store.Apply(ctx, r, crashMovie(r.MovieID))
				if err == nil && ok && acked[r.RequestID] {
					err = fmt.Errorf("acknowledged rating %s applied a second time", r.RequestID)
				}
				if err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, err)
					mu.Unlock()
				}
			}
		})
	}
	for k := range crashIDs {
		for i := 0; i <= maxI+crashWriters; i++ {
			retries <- crashRating(k, i)
		}
	}
	close(retries)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	checkCountedOnce(t, dir)
}

// checkCountedOnce: each movie's count and sum are exactly those of the
// request ids stored for it.
func checkCountedOnce(t *testing.T, dir string) {
	t.Helper()
	db, err := sqlitedb.OpenReadOnly(filepath.Join(dir, "ratings.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT m.movie_id, m.count, m.sum_tenths, count(a.request_id), coalesce(sum(a.rating_tenths), 0)
		FROM rated_movies m LEFT JOIN applied_requests a ON a.movie_id = m.movie_id GROUP BY m.movie_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id, count, sum, ids, idSum int64
		if err := rows.Scan(&id, &count, &sum, &ids, &idSum); err != nil {
			t.Fatal(err)
		}
		if count != ids || sum != idSum {
			t.Errorf("movie %d: count %d sum %d, but its stored request ids are %d with sum %d", id, count, sum, ids, idSum)
		}
		n++
	}
	if err := rows.Err(); err != nil && err != sql.ErrNoRows {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no movie rated in the store")
	}
}

// crashChild is the writer: crashWriters goroutines apply ratings as fast
// as the store takes them, printing "ack <id>" after each Apply that
// returned applied, and the store's stats every 50 ms, until killed (or 60 s).
func crashChild(dir string) {
	store, err := rpc.OpenStore(dir, rpc.SyncNormal)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(os.Stdout, format, args...) // unbuffered: written before the next Apply
		mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			st := store.Stats()
			say("stats %d %d\n", st.Batches, st.Applied)
			time.Sleep(50 * time.Millisecond)
		}
	}()
	var wg sync.WaitGroup
	for w := range crashWriters {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				r := crashRating(w%crashIDs, i)
				ok, err := store.Apply(ctx, r, crashMovie(r.MovieID))
				if err != nil {
					return
				}
				if ok {
					say("ack %s\n", r.RequestID)
				}
			}
		})
	}
	wg.Wait()
	os.Exit(0)
}
