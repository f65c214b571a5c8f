package stream

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/kafkatest"
	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
)

// A broker restart (every connection dropped, records and topics kept in its
// data directory): both readers of the view reconnect by themselves, /healthz
// is OK again within seconds of the broker's return — also for `movies`, a
// topic where nothing new arrives to prove that reading works — and records
// written after the restart reach the view; ratings are accepted again.
func TestViewRecoversAfterABrokerRestart(t *testing.T) {
	t.Parallel()
	b := kafkatest.StartDurable(t)
	proxy := kafkatest.Forward(t, b.Addr)
	k := kafkatest.Client(t, proxy.Via(b.Addr), nil)
	admin := kafkatest.Client(t, kafkaio.Config{Brokers: []string{b.Addr}}, nil)
	f := &fixture{t: t, proxy: proxy, k: k, admin: admin}

	f.produce(model.TopicMovies, movieRecord(1, "One"), movieRecord(2, "Two"))
	f.produce(model.TopicRatedMovies, ratedRecord(1, 2, 150, 10))
	w := f.start(t.TempDir(), 500*time.Millisecond)
	w.waitReady(t)

	// Counted with a client of its own: the admin client's pooled
	// connection would die with the broker.
	counter := &fixture{t: t, admin: kafkatest.Client(t, kafkaio.Config{Brokers: []string{b.Addr}}, nil)}
	before := counter.end(model.TopicRatings)
	counter.admin.Close()
	b.Stop()
	stopped := time.Now()
	// Through its proxy the webserver cannot tell a dead broker from a lost
	// answer: 504 "outcome unknown" (or 503 if it knows), never 202.
	if code, body := w.post(t, `{"movie_id": 1, "rating": 5, "request_id": "during-outage"}`); !definiteOrUnknown(code, body) {
		t.Errorf("POST without the broker = %d %s, want 503, or 504 with outcome unknown", code, body)
	}
	var m model.RatedMovie
	if code := w.get(t, "/api/movies/1", &m); code != 200 || m.Count != 2 {
		t.Errorf("GET during the outage = %d %+v, want the stored view", code, m)
	}
	// Long enough for kafka-go to stop retrying quietly and report the
	// failed reconnects; health names the view that cannot read.
	servetest.WaitFor(t, 20*time.Second, "/healthz to report the lost broker for a while", func() (bool, string) {
		err := w.b.Ready(context.Background())
		return err != nil && strings.Contains(err.Error(), "view: reading") && time.Since(stopped) > 4*time.Second, fmt.Sprint(err)
	})

	b.Start(t)
	restarted := time.Now()
	servetest.WaitFor(t, 5*time.Second, "/healthz OK after the broker came back", func() (bool, string) {
		err := w.b.Ready(context.Background())
		return err == nil, fmt.Sprint(err)
	})
	t.Logf("healthy %s after the broker restarted", time.Since(restarted).Round(10*time.Millisecond))

	f.produce(model.TopicMovies, movieRecord(3, "Three"))
	counter.admin = kafkatest.Client(t, kafkaio.Config{Brokers: []string{b.Addr}}, nil)
	if after := counter.end(model.TopicRatings); after != before {
		t.Errorf("the rating posted during the outage reached the log after the restart (%d records more): nothing may be retried in the background", after-before)
	}
	f.produce(model.TopicRatedMovies, ratedRecord(3, 1, 70, 4), ratedRecord(1, 3, 230, 11))
	servetest.WaitFor(t, 5*time.Second, "records written after the restart in the view", func() (bool, string) {
		var m3, m1 model.RatedMovie
		c3, c1 := w.get(t, "/api/movies/3", &m3), w.get(t, "/api/movies/1", &m1)
		return c3 == 200 && m3.Title == "Three" && m3.Count == 1 && c1 == 200 && m1.Count == 3, fmt.Sprintf("movie 3: %d %+v, movie 1: %d %+v", c3, m3, c1, m1)
	})
	servetest.WaitFor(t, 5*time.Second, "a rating to be accepted again", func() (bool, string) {
		code, body := w.post(t, `{"movie_id": 3, "rating": 8, "request_id": "after-restart"}`)
		return code == http.StatusAccepted, fmt.Sprint(code, " ", body)
	})
}
