package stream

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
	"github.com/ratingslab/lab/services/webserver"
)

// recordCrashChildEnv makes this test binary the writer process of
// TestRequestRecordSurvivesKill9: it records and acknowledges request ids
// in the named dir until it is killed.
const recordCrashChildEnv = "WEBSERVER_STREAM_RECORD_CRASH_CHILD_DIR"

func recordCrashRating(k, i int) model.Rating {
	return model.Rating{RequestID: fmt.Sprintf("c-%d-%d", k, i), MovieID: int64(1 + (k+i)%20), Tenths: int64(10 + (k*3+i)%91), UserID: int64(k)}
}

// TestRequestRecordSurvivesKill9 kills webserver-stream's request-id
// record with SIGKILL while 64 POSTs at once keep it committing batches:
// every id recorded before the kill (begin returned: it would have been
// produced) is still recorded, so its reuse for another rating is 409;
// every id whose acknowledgement was synced (syncAcks returned) is answered
// as acknowledged; an id acknowledged only in memory (202 would have
// followed; its mark is written soon after, not awaited) is acknowledged
// or, its mark lost, produced again (the retry horizon is an hour here) —
// never refused; and the flusher kept up: at most a quarter of the
// acknowledged ids (the run lasts a fraction of a second; the kill takes
// the last ackFlushInterval or so) lost their mark.
func TestRequestRecordSurvivesKill9(t *testing.T) {
	if dir := os.Getenv(recordCrashChildEnv); dir != "" {
		recordCrashChild(dir)
		return
	}
	dir := t.TempDir()
	recorded, acked, synced := map[string]bool{}, map[string]bool{}, map[string]bool{}
	var batches, ops int64
	read := func(line string) {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "recorded":
			recorded[f[1]] = true
		case len(f) == 2 && f[0] == "acked":
			acked[f[1]] = true
		case len(f) >= 2 && f[0] == "synced":
			for _, id := range f[1:] {
				synced[id] = true
			}
		case len(f) == 3 && f[0] == "stats":
			batches, _ = strconv.ParseInt(f[1], 10, 64)
			ops, _ = strconv.ParseInt(f[2], 10, 64)
		}
	}
	servetest.KillChildMidWrite(t, recordCrashChildEnv+"="+dir, read, func() bool { return len(acked) >= 2000 })
	if len(acked) < 2000 {
		t.Fatalf("the writer acknowledged only %d ids before it was killed", len(acked))
	}
	if len(synced) == 0 {
		t.Fatal("the writer synced no acknowledgement before it was killed")
	}
	if batches == 0 || float64(ops)/float64(batches) < 1.5 {
		t.Errorf("the writer committed %d operations in %d transactions: no group commit to test", ops, batches)
	}

	l, err := openRequestLog(dir, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	lost := 0
	for id := range recorded {
		var k, i int
		fmt.Sscanf(id, "c-%d-%d", &k, &i)
		other := recordCrashRating(k, i)
		other.Tenths = 10 + (other.Tenths-10+1)%91
		if err := l.begin(ctx, other, time.Now()); !errors.As(err, new(*webserver.ConflictError)) {
			t.Fatalf("recorded id %s reused for another rating after the kill: %v, want a 409 conflict", id, err)
		}
		err := l.begin(ctx, recordCrashRating(k, i), time.Now())
		if synced[id] && !errors.Is(err, errAlreadyAcknowledged) {
			t.Fatalf("id %s, its acknowledgement synced, sent again after the kill: %v, want already acknowledged", id, err)
		}
		if err != nil && !errors.Is(err, errAlreadyAcknowledged) {
			t.Fatalf("recorded id %s after the kill: %v, want produce again or already acknowledged", id, err)
		}
		if acked[id] && err == nil {
			lost++
		}
	}
	t.Logf("killed after %d recorded, %d acknowledged (%d synced) ids, %d marks lost; %d operations in %d transactions before the last stats line",
		len(recorded), len(acked), len(synced), lost, ops, batches)
	if lost > len(acked)/4 {
		t.Errorf("%d of %d acknowledged ids lost their mark in the kill: the flusher did not keep up", lost, len(acked))
	}
}

// recordCrashChild records and acknowledges ids from 64 goroutines, printing
// each outcome after its call returned, until it is killed; every 25th
// rating a goroutine syncs the acknowledgements and names the ids it
// acknowledged before.
func recordCrashChild(dir string) {
	l, err := openRequestLog(dir, time.Hour, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx := context.Background()
	var out sync.Mutex
	say := func(format string, args ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Printf(format, args...)
	}
	var wg sync.WaitGroup
	for k := range 64 {
		wg.Go(func() {
			var unsynced []string
			for i := 0; ; i++ {
				r := recordCrashRating(k, i)
				if err := l.begin(ctx, r, time.Now()); err != nil {
					fmt.Fprintln(os.Stderr, "begin:", err)
					os.Exit(2)
				}
				say("recorded %s\n", r.RequestID)
				l.acknowledged(r.RequestID, time.Now())
				say("acked %s\n", r.RequestID)
				unsynced = append(unsynced, r.RequestID)
				if i%25 == 24 {
					if err := l.syncAcks(ctx); err != nil {
						fmt.Fprintln(os.Stderr, "syncAcks:", err)
						os.Exit(2)
					}
					say("synced %s\n", strings.Join(unsynced, " "))
					unsynced = unsynced[:0]
				}
				if i%50 == 0 {
					b, n := l.writes.Batches()
					say("stats %d %d\n", b, n)
				}
			}
		})
	}
	wg.Wait()
}
