package stream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/lib/sqlitedb"
	"github.com/ratingslab/lab/services/model"
)

// A request id names one rating (docs/api.md): the same rating again is
// answered as the first time without producing it again, also after a
// restart; the id with another rating is 409 naming the first use, and
// nothing is produced — on any movie, so on any partition.
func TestARequestIDNamesOneRatingAcrossRestarts(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.produce(model.TopicMovies, movieRecord(1, "One"), movieRecord(2, "Two"), movieRecord(3, "Three"))
	dir := t.TempDir()
	w := f.start(dir, 2*time.Second)
	w.waitReady(t)

	if code, body := w.post(t, `{"movie_id": 1, "rating": 7.5, "user_id": 4, "request_id": "once"}`); code != http.StatusAccepted {
		t.Fatalf("first use = %d %s, want 202", code, body)
	}
	produced := f.end(model.TopicRatings)
	check := func(when string) {
		t.Helper()
		code, body := w.post(t, `{"movie_id": 1, "rating": 7.5, "user_id": 4, "request_id": "once"}`)
		if code != http.StatusAccepted || body != `{"request_id":"once","movie_id":1}`+"\n" {
			t.Errorf("%s: the same rating again = %d %s, want the first answer, 202", when, code, body)
		}
		for _, other := range []string{
			`{"movie_id": 2, "rating": 7.5, "user_id": 4, "request_id": "once"}`,
			`{"movie_id": 3, "rating": 7.5, "user_id": 4, "request_id": "once"}`,
			`{"movie_id": 1, "rating": 8, "user_id": 4, "request_id": "once"}`,
			`{"movie_id": 1, "rating": 7.5, "request_id": "once"}`,
		} {
			code, body := w.post(t, other)
			if code != http.StatusConflict || !strings.Contains(body, `request_id: \"once\" already names another rating (movie 1, rating 7.5, user 4, first accepted 20`) {
				t.Errorf("%s: %s = %d %s, want 409 naming the first use", when, other, code, body)
			}
		}
		if got := f.end(model.TopicRatings); got != produced {
			t.Errorf("%s: %d more records produced, want none", when, got-produced)
		}
	}
	check("running")
	w.stop()
	w = f.start(dir, 2*time.Second)
	w.waitReady(t)
	check("after a restart")
}

// A first attempt whose outcome is unknown (the acknowledgement came after
// the answer) is produced again when retried with the same rating within
// --retry-horizon — ratings-stream counts the request id once — and refused
// with 409 after it, when a second copy could be counted twice.
func TestARetryOfAnUnknownOutcomeIsProducedAgainWithinTheHorizon(t *testing.T) {
	f := newFixture(t)
	f.produce(model.TopicMovies, movieRecord(1, "One"))
	w := f.start(t.TempDir(), 300*time.Millisecond, func(c *Config) { c.RetryHorizon = 3 * time.Second })
	w.waitReady(t)

	var late atomic.Bool
	late.Store(true)
	f.broker.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if late.CompareAndSwap(true, false) {
			time.Sleep(time.Second) // answered after the webserver gave up
		}
		f.broker.KeepControl()
		return nil, nil, false
	})
	before := f.end(model.TopicRatings)
	if code, body := w.post(t, `{"movie_id": 1, "rating": 6, "request_id": "unknown-1"}`); code < 500 {
		t.Fatalf("first attempt = %d %s, want a 5xx (outcome unknown)", code, body)
	}
	if code, body := w.post(t, `{"movie_id": 1, "rating": 9, "request_id": "unknown-1"}`); code != http.StatusConflict {
		t.Errorf("the id with another rating after an unknown outcome = %d %s, want 409", code, body)
	}
	servetest.WaitFor(t, 10*time.Second, "the late first attempt in the log", func() (bool, string) {
		n := f.end(model.TopicRatings) - before
		return n == 1, fmt.Sprintf("%d records", n)
	})
	if code, body := w.post(t, `{"movie_id": 1, "rating": 6, "request_id": "unknown-1"}`); code != http.StatusAccepted {
		t.Fatalf("retry within the horizon = %d %s, want 202", code, body)
	}
	if got := f.end(model.TopicRatings) - before; got != 2 {
		t.Errorf("%d records of unknown-1 in the log, want 2 (the late first attempt and the retry; ratings-stream counts them once)", got)
	}

	late.Store(true)
	if code, _ := w.post(t, `{"movie_id": 1, "rating": 5, "request_id": "unknown-2"}`); code < 500 {
		t.Fatalf("first attempt of unknown-2 = %d, want a 5xx", code)
	}
	time.Sleep(3100 * time.Millisecond) // past the horizon
	code, body := w.post(t, `{"movie_id": 1, "rating": 5, "request_id": "unknown-2"}`)
	if code != http.StatusConflict || !strings.Contains(body, "outcome is unknown") || !strings.Contains(body, "more than 3s after the first attempt") {
		t.Errorf("retry past the horizon = %d %s, want 409 saying why", code, body)
	}
}

// BenchmarkRequestLog is what the request-id record adds to every POST of
// webserver-stream: record the id before producing, mark it acknowledged
// after (in memory; the flusher writes the marks beside later records);
// from one POST at a time and from 64 at once, as under load (go
// test ./services/webserver/stream -run '^$' -bench RequestLog -benchmem).
func BenchmarkRequestLog(b *testing.B) {
	for _, posts := range []int{1, 64} {
		b.Run(fmt.Sprintf("posts=%d", posts), func(b *testing.B) {
			l, err := openRequestLog(b.TempDir(), 0, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			ctx := context.Background()
			now := time.Now()
			var seq atomic.Int64
			b.SetParallelism(posts) // × GOMAXPROCS goroutines
			servetest.ReportCPU(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := seq.Add(1)
					r := model.Rating{RequestID: fmt.Sprintf("bench-%d", i), MovieID: 1 + i%180, Tenths: 75, UserID: i % 1000}
					if err := l.begin(ctx, r, now); err != nil {
						b.Error(err)
						return
					}
					l.acknowledged(r.RequestID, now)
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "posts/s")
		})
	}
}

// holdWriteLock takes the write lock of the request-id record's file from a
// second connection, as a long transaction would: the record's committer
// waits for it (busy_timeout). The returned func releases it.
func holdWriteLock(t *testing.T, dir string) (release func()) {
	t.Helper()
	path, err := sqlitedb.File(dir, requestsFile)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlitedb.Open(path, sqlitedb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.Begin() // BEGIN IMMEDIATE: the write lock
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			tx.Rollback()
			db.Close()
		})
	}
	t.Cleanup(release)
	return release
}

// The acknowledgement mark is not awaited (the 202's durability is the
// broker's acks=all): acknowledged returns while the record's file cannot
// be written, a repeat of the rating is answered as acknowledged from
// memory meanwhile, and the mark reaches the file once it can be written —
// by the flusher, or at the latest by Close.
func TestAnAcknowledgementIsNotAwaitedAndIsWrittenSoonAfter(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l, err := openRequestLog(dir, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := model.Rating{RequestID: "acked-1", MovieID: 3, Tenths: 70, UserID: 1}
	if err := l.begin(ctx, r, time.Now()); err != nil {
		t.Fatal(err)
	}

	release := holdWriteLock(t, dir)
	returned := make(chan struct{})
	go func() {
		l.acknowledged(r.RequestID, time.Now())
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(2 * time.Second):
		t.Fatal("acknowledged waited for the request-id record's file (locked): a 202 would wait for a SQLite commit")
	}
	if !l.pendingAck(r.RequestID) {
		t.Error("the acknowledgement is not in the pending set while its mark cannot be written")
	}
	release()
	if err := l.begin(ctx, r, time.Now()); !errors.Is(err, errAlreadyAcknowledged) {
		t.Errorf("the same rating after its acknowledgement = %v, want already acknowledged", err)
	}
	servetest.WaitFor(t, 5*time.Second, "the flusher to write the mark", func() (bool, string) {
		return !l.pendingAck(r.RequestID), "still pending"
	})

	// Close writes a mark not written yet, whether the flusher took it
	// (and waits behind the lock) or not.
	r2 := model.Rating{RequestID: "acked-2", MovieID: 4, Tenths: 80, UserID: 1}
	if err := l.begin(ctx, r2, time.Now()); err != nil {
		t.Fatal(err)
	}
	release = holdWriteLock(t, dir)
	l.acknowledged(r2.RequestID, time.Now())
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	time.Sleep(100 * time.Millisecond)
	release()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}

	l, err = openRequestLog(dir, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, r := range []model.Rating{r, r2} {
		if err := l.begin(ctx, r, time.Now()); !errors.Is(err, errAlreadyAcknowledged) {
			t.Errorf("%s after a reopen = %v, want already acknowledged (its mark written)", r.RequestID, err)
		}
	}
}
