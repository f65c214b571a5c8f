package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/kafkatest"
	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
	"github.com/ratingslab/lab/services/webserver"
)

type fixture struct {
	t      *testing.T
	broker *kafkatest.Broker
	proxy  *kafkatest.Forwarder
	k      *kafkaio.Cluster // the webserver's client, through the proxy
	admin  *kafkaio.Cluster // the test's own client, direct
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	b := kafkatest.Start(t, kafkatest.LabTopics)
	proxy := kafkatest.Forward(t, b.Addr)
	k := kafkatest.Client(t, proxy.Via(b.Addr), nil)
	admin := kafkatest.Client(t, kafkaio.Config{Brokers: []string{b.Addr}}, nil)
	return &fixture{t: t, broker: b, proxy: proxy, k: k, admin: admin}
}

func (f *fixture) produce(topic string, msgs ...kafka.Message) {
	f.t.Helper()
	w := f.admin.Writer(topic, kafkaio.WriterOptions{})
	defer w.Close()
	if err := w.Write(servetest.Context(f.t, 10*time.Second), msgs...); err != nil {
		f.t.Fatal(err)
	}
}

func movieRecord(id int64, title string) kafka.Message {
	v, _ := json.Marshal(model.Movie{ID: id, Title: title, ReleaseYear: 2000 + int(id), Version: 1})
	return kafka.Message{Key: []byte(strconv.FormatInt(id, 10)), Value: v}
}

func ratedRecord(id, count, sum, offset int64) kafka.Message {
	v, _ := json.Marshal(model.RatedMovieEvent{
		RatedMovie:    model.NewRatedMovie(model.Movie{ID: id}, model.CountAndSum{Count: count, SumTenth: sum}),
		LastEventTime: time.Now(), SourcePartition: model.RatingPartition([]byte(strconv.FormatInt(id, 10)), 6), SourceOffset: offset,
	})
	return kafka.Message{Key: []byte(strconv.FormatInt(id, 10)), Value: v}
}

// webserver is a running backend with its HTTP server.
type webserverUnderTest struct {
	b      *Backend
	reg    *prometheus.Registry
	srv    *httptest.Server
	admin  http.Handler
	cancel context.CancelFunc
	done   chan error
}

func (f *fixture) start(dir string, produceTimeout time.Duration, tweaks ...func(*Config)) *webserverUnderTest {
	f.t.Helper()
	reg := prometheus.NewRegistry()
	cfg := Config{Cluster: f.k, DataDir: dir, ProduceTimeout: produceTimeout, Registerer: reg,
		TopicWait: kafkaio.TopicWait{Timeout: 5 * time.Second, Interval: 100 * time.Millisecond}}
	for _, tweak := range tweaks {
		tweak(&cfg)
	}
	b, err := NewBackend(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := NewServer(b, reg, nil)
	w := &webserverUnderTest{b: b, reg: reg, srv: httptest.NewServer(srv), admin: srv.Admin(), cancel: cancel, done: make(chan error, 1)}
	go func() { w.done <- b.Run(ctx) }()
	f.t.Cleanup(w.stop)
	return w
}

func (w *webserverUnderTest) stop() {
	if w.done == nil {
		return
	}
	w.cancel()
	<-w.done
	w.done = nil
	w.srv.Close()
	w.b.Close()
}

func (w *webserverUnderTest) post(t *testing.T, body string) (int, string) {
	t.Helper()
	res, err := http.Post(w.srv.URL+"/api/ratings", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (w *webserverUnderTest) get(t *testing.T, path string, v any) int {
	t.Helper()
	res, err := http.Get(w.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if v != nil {
		_ = json.NewDecoder(res.Body).Decode(v)
	}
	return res.StatusCode
}

// getAdmin is get on the server's admin tree (health, metrics, faults).
func (w *webserverUnderTest) getAdmin(t *testing.T, path string, v any) int {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Host, req.RemoteAddr = "127.0.0.1", "127.0.0.1:1"
	w.admin.ServeHTTP(rec, req)
	if v != nil {
		_ = json.NewDecoder(rec.Body).Decode(v)
	}
	return rec.Code
}

func (w *webserverUnderTest) waitReady(t *testing.T) {
	t.Helper()
	servetest.WaitFor(t, 15*time.Second, "the view to be hydrated", func() (bool, string) {
		err := w.b.Ready(context.Background())
		return err == nil, fmt.Sprint(err)
	})
}

// firstRating reads the first record of the ratings partition of movie:
// its key and the event it holds.
func (f *fixture) firstRating(t *testing.T, movie int64) (string, model.RatingEvent, error) {
	t.Helper()
	part := model.RatingPartition(strconv.AppendInt(nil, movie, 10), model.RatingsPartitions)
	fe, err := f.admin.NewFetcher(model.TopicRatings, map[int]int64{part: kafka.FirstOffset}, kafkaio.FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer fe.Close()
	msgs, err := fe.Next(servetest.Context(t, 10*time.Second), nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := model.DecodeRatingEvent(msgs[0].Value)
	return string(msgs[0].Key), ev, err
}

func (f *fixture) end(topic string) int64 {
	f.t.Helper()
	parts := map[string]int{model.TopicRatings: 6, model.TopicMovies: 1, model.TopicRatedMovies: 6, model.TopicRatingsDLQ: 1}[topic]
	b, err := f.admin.Offsets(servetest.Context(f.t, 10*time.Second), topic, kafkaio.AllPartitions(parts))
	if err != nil {
		f.t.Fatal(err)
	}
	var n int64
	for _, x := range b {
		n += x.End
	}
	return n
}

func TestAcceptedRatingIsInTheLogBeforeThe202(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.produce(model.TopicMovies, movieRecord(1, "One"), movieRecord(2, "Two"))
	w := f.start(t.TempDir(), 2*time.Second)
	w.waitReady(t)

	for i := range 5 {
		before := f.end(model.TopicRatings)
		code, body := w.post(t, fmt.Sprintf(`{"movie_id": 2, "rating": 7.5, "user_id": 9, "request_id": "ack-%d"}`, i))
		if code != http.StatusAccepted {
			t.Fatalf("POST = %d %s, want 202", code, body)
		}
		if after := f.end(model.TopicRatings); after != before+1 {
			t.Fatalf("after the 202 the ratings topic grew by %d records, want 1: the answer came before the acknowledgement", after-before)
		}
	}
	// The record is the documented event, keyed by movie id, on the movie's partition.
	key, ev, err := f.firstRating(t, 2)
	if err != nil || key != "2" || ev.MovieID != 2 || ev.Tenths != 75 || ev.UserID != 9 || ev.RequestID != "ack-0" {
		t.Fatalf("record key %q event %+v err %v", key, ev, err)
	}
	if age := time.Since(ev.EventTime); age < 0 || age > time.Minute {
		t.Errorf("event_time %s is not the time of acceptance", ev.EventTime)
	}
}

func TestBadRatingsAre4xxAndNothingIsProduced(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.produce(model.TopicMovies, movieRecord(1, "One"))
	w := f.start(t.TempDir(), 2*time.Second)
	w.waitReady(t)
	before := f.end(model.TopicRatings)
	for body, want := range map[string]int{
		`{"movie_id": 1, "rating": 7.55}`:     400,
		`{"movie_id": 1}`:                     400,
		`{"movie_id": "1", "rating": 7}`:      400,
		`not json`:                            400,
		`{"movie_id": 1, "rating": 7, "x":1}`: 400,
		`{"movie_id": 99, "rating": 7}`:       422,
	} {
		code, resp := w.post(t, body)
		if code != want {
			t.Errorf("POST %s = %d %s, want %d", body, code, resp, want)
		}
		var e webserver.ErrorBody
		if json.Unmarshal([]byte(resp), &e) != nil || e.Error == "" {
			t.Errorf("POST %s: want a JSON error, got %s", body, resp)
		}
	}
	if after := f.end(model.TopicRatings); after != before {
		t.Errorf("%d records produced for rejected requests", after-before)
	}
}

// definiteOrUnknown: a rating not acknowledged is answered 503 (certainly
// not in the log) or 504 with outcome unknown, with retry_after either way.
func definiteOrUnknown(code int, body string) bool {
	var e webserver.ErrorBody
	if json.Unmarshal([]byte(body), &e) != nil || e.RetryAfter == nil {
		return false
	}
	return code == http.StatusServiceUnavailable && e.Outcome == "" ||
		code == http.StatusGatewayTimeout && e.Outcome == webserver.OutcomeUnknown
}

func TestUnreachableBrokerIsAnsweredWithinTheTimeout(t *testing.T) {
	f := newFixture(t)
	f.produce(model.TopicMovies, movieRecord(1, "One"))
	w := f.start(t.TempDir(), 700*time.Millisecond)
	w.waitReady(t)

	before := f.end(model.TopicRatings)
	f.proxy.Cut()
	start := time.Now()
	code, body := w.post(t, `{"movie_id": 1, "rating": 5}`)
	took := time.Since(start)
	if !definiteOrUnknown(code, body) {
		t.Fatalf("POST with the broker unreachable = %d %s, want 503, or 504 with outcome unknown", code, body)
	}
	if took > 2*time.Second {
		t.Errorf("%d came after %s; the produce timeout is 700ms", code, took)
	}
	// Reads do not depend on the broker.
	var m model.RatedMovie
	if code := w.get(t, "/api/movies/1", &m); code != 200 || m.Title != "One" {
		t.Errorf("GET while the broker is unreachable = %d %+v", code, m)
	}
	servetest.WaitFor(t, 10*time.Second, "health to report the broker", func() (bool, string) {
		err := w.b.Ready(context.Background())
		return err != nil, ""
	})
	f.proxy.Heal()
	time.Sleep(time.Second) // what a background retry would need to land
	if after := f.end(model.TopicRatings); after != before {
		t.Errorf("the rating answered %d reached the log after the heal: nothing may be retried in the background", code)
	}
	servetest.WaitFor(t, 20*time.Second, "POST to work again after healing", func() (bool, string) {
		code, body := w.post(t, `{"movie_id": 1, "rating": 5}`)
		return code == http.StatusAccepted, fmt.Sprint(code, body)
	})
}

// The broker is reachable but acknowledges too late: 504 "outcome unknown"
// at the produce timeout — it does land, once — never a hang, and never a
// 202 without the acknowledgement.
func TestLateAcknowledgementIsAnUnknownOutcome(t *testing.T) {
	f := newFixture(t)
	f.produce(model.TopicMovies, movieRecord(1, "One"))
	w := f.start(t.TempDir(), 500*time.Millisecond)
	w.waitReady(t)
	f.broker.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		time.Sleep(1500 * time.Millisecond) // one produce request answered late
		return nil, nil, false
	})
	before := f.end(model.TopicRatings)
	start := time.Now()
	code, body := w.post(t, `{"movie_id": 1, "rating": 5, "request_id": "late-1"}`)
	var e webserver.ErrorBody
	if json.Unmarshal([]byte(body), &e); code != http.StatusGatewayTimeout || e.Outcome != webserver.OutcomeUnknown {
		t.Fatalf("POST with a late acknowledgement = %d %s, want 504 with outcome unknown", code, body)
	}
	if took := time.Since(start); took > 1400*time.Millisecond {
		t.Errorf("504 after %s; should come at the 500ms produce timeout", took)
	}
	// The answer said "outcome unknown", not "not written": the broker
	// appends the record once its late answer goes out, exactly once (the
	// produce was not retried), so ratings-stream will count it — which is
	// why a client retries with the same request id, never a new one.
	servetest.WaitFor(t, 10*time.Second, "the late record in the log", func() (bool, string) {
		n := f.end(model.TopicRatings) - before
		return n >= 1, fmt.Sprintf("%d records", n)
	})
	time.Sleep(500 * time.Millisecond) // a second copy would come within a backoff
	if n := f.end(model.TopicRatings) - before; n != 1 {
		t.Fatalf("%d records after the late acknowledgement, want exactly 1", n)
	}
	if _, ev, err := f.firstRating(t, 1); err != nil || ev.RequestID != "late-1" || ev.Tenths != 50 {
		t.Errorf("the late record is %+v (%v), want late-1's rating", ev, err)
	}
}

func TestViewServesMoviesWithAggregatesAndIgnoresStaleUpdates(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.produce(model.TopicMovies, movieRecord(1, "One"), movieRecord(2, "Two"), movieRecord(3, "Three"))
	f.produce(model.TopicRatedMovies, ratedRecord(2, 3, 215, 40))
	w := f.start(t.TempDir(), time.Second)
	w.waitReady(t)

	var page webserver.MoviesPage
	if code := w.get(t, "/api/movies?limit=2", &page); code != 200 || page.Total != 3 || len(page.Movies) != 2 {
		t.Fatalf("GET /api/movies = %d %+v", code, page)
	}
	if m := page.Movies[1]; m.MovieID != 2 || m.Count != 3 || m.SumTenths != 215 || m.Average != 21.5/3 || m.Title != "Two" {
		t.Errorf("movie 2 = %+v", m)
	}
	if m := page.Movies[0]; m.MovieID != 1 || m.Count != 0 || m.Average != 0 {
		t.Errorf("unrated movie 1 = %+v", m)
	}

	// A newer update applies; a stale one (lower source offset: a re-emit,
	// or a new owner catching up) does not move the count back.
	f.produce(model.TopicRatedMovies, ratedRecord(2, 5, 400, 90), ratedRecord(2, 4, 300, 60))
	servetest.WaitFor(t, 10*time.Second, "the newer update", func() (bool, string) {
		var m model.RatedMovie
		w.get(t, "/api/movies/2", &m)
		return m.Count == 5 && m.SumTenths == 400, fmt.Sprintf("%+v", m)
	})
	f.produce(model.TopicRatedMovies, ratedRecord(3, 1, 10, 5)) // a marker to know the stale one was read
	servetest.WaitFor(t, 10*time.Second, "the marker", func() (bool, string) {
		var m model.RatedMovie
		w.get(t, "/api/movies/3", &m)
		return m.Count == 1, ""
	})
	var m model.RatedMovie
	w.get(t, "/api/movies/2", &m)
	if m.Count != 5 {
		t.Errorf("a stale update moved movie 2 back to %+v", m)
	}
	if n := histogramCount(t, w.reg, "lab_view_freshness_seconds"); n == 0 {
		t.Error("no freshness observed for live updates")
	}
	if code := w.get(t, "/api/movies/77", nil); code != 404 {
		t.Errorf("GET unknown movie = %d, want 404", code)
	}
}

// The view and its positions persist: a restart serves the stored view even
// with the broker gone, and says in /healthz why it cannot hydrate.
func TestViewSurvivesARestartAndServesWithoutTheBroker(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.produce(model.TopicMovies, movieRecord(1, "One"), movieRecord(2, "Two"))
	f.produce(model.TopicRatedMovies, ratedRecord(1, 2, 150, 10))
	dir := t.TempDir()
	w := f.start(dir, time.Second)
	w.waitReady(t)
	w.stop()

	f.proxy.Cut()
	w = f.start(dir, 300*time.Millisecond)
	var m model.RatedMovie
	if code := w.get(t, "/api/movies/1", &m); code != 200 || m.Count != 2 || m.Title != "One" {
		t.Fatalf("GET after restart without broker = %d %+v", code, m)
	}
	servetest.WaitFor(t, 15*time.Second, "/healthz to say why the view cannot hydrate", func() (bool, string) {
		var h map[string]any
		code := w.getAdmin(t, "/healthz", &h)
		msg := fmt.Sprint(h["error"])
		return code == 503 && (strings.Contains(msg, "view: reading") || strings.Contains(msg, "unreachable")), fmt.Sprint(code, " ", msg)
	})
	if code, body := w.post(t, `{"movie_id": 1, "rating": 5}`); !definiteOrUnknown(code, body) {
		t.Errorf("POST without broker = %d %s, want 503, or 504 with outcome unknown", code, body)
	}
}

func TestMissingTopicsAreReportedInHealth(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, []kafkatest.Topic{{Name: model.TopicMovies, Partitions: 1}})
	k, err := kafkaio.NewCluster(kafkaio.Config{Brokers: []string{b.Addr}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	be, err := NewBackend(Config{Cluster: k, DataDir: t.TempDir(), TopicWait: kafkaio.TopicWait{Timeout: 500 * time.Millisecond, Interval: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	if err := be.Run(context.Background()); err == nil || !strings.Contains(err.Error(), model.TopicRatings) {
		t.Fatalf("Run = %v, want an error naming the missing topic", err)
	}
	if err := be.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), model.TopicRatedMovies) {
		t.Errorf("health = %v, want the missing topics", err)
	}
}

func histogramCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}
