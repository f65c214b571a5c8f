package stream

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ratingslab/lab/services/lib/kafkaio/kafkatest"
	"github.com/ratingslab/lab/services/lib/servetest"
)

// A broker restart (every connection dropped, records, topics and group
// offsets kept in its data directory): the consumer group rejoins, the
// ratings readers and the movies table reconnect by themselves, health is OK
// again within seconds of the broker's return — also for the movies table,
// whose topic receives nothing new to prove that reading works — and ratings
// produced after the restart are counted exactly.
func TestProcessorRecoversAfterABrokerRestart(t *testing.T) {
	t.Parallel()
	for _, d := range []Delivery{EffectivelyOnce, Transactional} {
		t.Run(string(d), func(t *testing.T) { t.Parallel(); processorRecoversAfterABrokerRestart(t, d) })
	}
}

func processorRecoversAfterABrokerRestart(t *testing.T, delivery Delivery) {
	b := kafkatest.StartDurable(t)
	proxy := kafkatest.Forward(t, b.Addr)
	routed := kafkatest.Client(t, proxy.Via(b.Addr), testLog(t))
	admin := &lab{t: t, k: newClient(t, b.Addr)} // the test's own client, direct
	admin.movies(10)
	g := newLedger()
	admin.ratings(g, 500, 10, 11)

	// The group timing the part runs with (the broker's minimum session
	// timeout is above the short one other tests use).
	r := (&lab{t: t, k: routed}).start(t.TempDir(), func(c *Config) {
		c.HeartbeatInterval, c.SessionTimeout, c.RebalanceTimeout = time.Second, 10*time.Second, 15*time.Second
		c.Delivery = delivery
	})
	servetest.WaitFor(t, 30*time.Second, "the first ratings counted", func() (bool, string) { return stateMatches(g, r.p) })
	servetest.WaitFor(t, 10*time.Second, "health OK", func() (bool, string) {
		err := r.p.Ready(context.Background())
		return err == nil, fmt.Sprint(err)
	})

	b.Stop()
	stopped := time.Now()
	// Long enough for kafka-go to stop retrying quietly and report the
	// failed reconnects.
	servetest.WaitFor(t, 20*time.Second, "health to report the lost broker for a while", func() (bool, string) {
		err := r.p.Ready(context.Background())
		return err != nil && time.Since(stopped) > 4*time.Second, fmt.Sprint(err)
	})

	b.Start(t)
	restarted := time.Now()
	servetest.WaitFor(t, 8*time.Second, "health OK after the broker came back", func() (bool, string) {
		err := r.p.Ready(context.Background())
		return err == nil, fmt.Sprint(err)
	})
	t.Logf("healthy %s after the broker restarted", time.Since(restarted).Round(10*time.Millisecond))

	admin.ratings(g, 500, 10, 12)
	servetest.WaitFor(t, 10*time.Second, "ratings produced after the restart counted exactly", func() (bool, string) { return stateMatches(g, r.p) })
	servetest.WaitFor(t, 10*time.Second, "rated-movies to match", func() (bool, string) { return admin.viewMatches(g) })
}
