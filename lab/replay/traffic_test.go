package replay

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/lab/load/ledger"
	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
)

// target is a webserver stand-in on 127.0.0.1: it accepts ratings of movies
// 1..100 (201), rejects others (422), fails movie 99 (503), and records
// what arrived when.
type target struct {
	mu      sync.Mutex
	arrived []arrival
	srv     *httptest.Server
}

type arrival struct {
	at   time.Time
	body map[string]any
}

func newTarget(t *testing.T) *target {
	tg := &target{}
	tg.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if r.Method != http.MethodPost || r.URL.Path != "/api/ratings" || json.NewDecoder(r.Body).Decode(&body) != nil {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		tg.mu.Lock()
		tg.arrived = append(tg.arrived, arrival{time.Now(), body})
		tg.mu.Unlock()
		switch movie := body["movie_id"].(float64); {
		case movie == 99:
			w.WriteHeader(http.StatusServiceUnavailable)
		case movie > 100:
			w.WriteHeader(http.StatusUnprocessableEntity)
		default:
			w.WriteHeader(http.StatusCreated)
		}
	}))
	t.Cleanup(tg.srv.Close)
	return tg
}

// A window of the log is replayed at the original pace times the speed,
// each rating once with a new request id that names its record, skipping
// what ratings-stream would not count; every request lands in a ledger.
func TestReplayTrafficPacesAndKeepsALedger(t *testing.T) {
	b := newTestBroker(t)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	before := rating("before", 5, 50, base.Add(-time.Second))
	msgs := []kafka.Message{
		before,
		rating("a", 1, 70, base),
		rating("b", 2, 85, base.Add(200*time.Millisecond)),
		rating("a", 1, 70, base.Add(250*time.Millisecond)), // re-produced: counted once
		rating("c", 99, 30, base.Add(300*time.Millisecond)),
		rating("d", 500, 40, base.Add(350*time.Millisecond)),
		rating("e", 3, 100, base.Add(400*time.Millisecond)),
		{Partition: 0, Key: []byte("7"), Value: []byte(`{"movie_id":7}`), Time: base.Add(410 * time.Millisecond)},
		rating("after", 5, 50, base.Add(time.Second)),
	}
	b.produce(model.TopicRatings, msgs...)
	tg := newTarget(t)

	dir := t.TempDir()
	res, err := ReplayTraffic(servetest.Context(t, 30*time.Second), b.k, TrafficSpec{
		From: base, To: base.Add(time.Second), Variant: "rpc", URL: tg.srv.URL,
		Speed: Speed{Factor: 2}, RunID: "replay-test", LedgerDir: dir,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ratings != 5 || res.Skipped[SkipDuplicate] != 1 || res.Skipped[SkipNotRating] != 1 {
		t.Fatalf("selected %d ratings, skipped %v; want 5, one duplicate, one not a rating", res.Ratings, res.Skipped)
	}
	if res.Outcomes[ledger.Acknowledged] != 3 || res.Outcomes[ledger.Failed] != 1 || res.Outcomes[ledger.Rejected] != 1 {
		t.Fatalf("outcomes %v, want 3 acknowledged, 1 failed (503), 1 rejected (422)", res.Outcomes)
	}

	tg.mu.Lock()
	arrived := append([]arrival(nil), tg.arrived...)
	tg.mu.Unlock()
	if len(arrived) != 5 {
		t.Fatalf("%d requests arrived, want 5", len(arrived))
	}
	// At 2x, 400ms of recorded traffic take at least 200ms to replay.
	if span := arrived[len(arrived)-1].at.Sub(arrived[0].at); span < 190*time.Millisecond {
		t.Errorf("5 ratings over 400ms replayed at 2x within %v, want at least 200ms", span)
	}
	ids := map[string]bool{}
	for _, a := range arrived {
		id, _ := a.body["request_id"].(string)
		if !strings.HasPrefix(id, "replay-test:") || ids[id] {
			t.Errorf("request id %q: want a new, unique replay-test:<partition>.<offset>", id)
		}
		ids[id] = true
	}
	if a := arrived[0].body; a["movie_id"] != 1.0 || a["rating"] != 7.0 || a["user_id"] != 7.0 {
		t.Errorf("first replayed request %v, want movie 1, rating 7, user 7", a)
	}

	l, err := ledger.Read(res.Ledger)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Complete() || len(l.Entries) != 5 || l.Header.Targets["rpc"] != tg.srv.URL || l.Header.Variants[0] != "rpc" {
		t.Fatalf("ledger: complete %v, %d entries, header %+v", l.Complete(), len(l.Entries), l.Header)
	}
	for _, e := range l.Entries {
		if !ids[e.RequestID] || e.Variant != "rpc" {
			t.Errorf("ledger entry %+v does not match a request sent", e)
		}
	}
}

func TestReplayTrafficNamesBadInput(t *testing.T) {
	b := newTestBroker(t)
	now := time.Now()
	for _, tc := range []struct {
		spec TrafficSpec
		want string
	}{
		{TrafficSpec{From: now.Add(-time.Hour), To: now, Speed: Speed{Max: true}, RunID: "r"}, "--target"},
		{TrafficSpec{Variant: "rpc", URL: "http://127.0.0.1:1", To: now, Speed: Speed{Max: true}, RunID: "r"}, "--from"},
		{TrafficSpec{Variant: "rpc", URL: "http://127.0.0.1:1", From: now, To: now.Add(-time.Hour), Speed: Speed{Max: true}, RunID: "r"}, "--to"},
		{TrafficSpec{Variant: "rpc", URL: "http://127.0.0.1:1", From: now.Add(-time.Hour), To: now, Speed: Speed{Max: true}, RunID: "r", LedgerDir: t.TempDir()}, "no ratings"},
	} {
		if _, err := ReplayTraffic(servetest.Context(t, 10*time.Second), b.k, tc.spec); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ReplayTraffic(%+v) = %v, want an error naming %s", tc.spec, err, tc.want)
		}
	}
	for _, s := range []string{"", "x", "0x", "-1x", "fast", "10"} {
		if _, err := ParseSpeed(s); err == nil {
			t.Errorf("ParseSpeed(%q) accepted", s)
		}
	}
	if s, err := ParseSpeed("10x"); err != nil || s.Factor != 10 {
		t.Errorf("ParseSpeed(10x) = %+v, %v", s, err)
	}
}
