package kafkaio_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/kafkatest"
)

// exercise drives every kind of kafka-go client the lab uses through k:
// metadata, produce, partition fetch, consumer group join and commit.
func exercise(t *testing.T, k *kafkaio.Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	parts, err := k.WaitForTopics(ctx, []string{"routed"}, kafkaio.TopicWait{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w := k.Writer("routed", kafkaio.WriterOptions{})
	defer w.Close()
	var msgs []kafka.Message
	for i := range 30 {
		msgs = append(msgs, kafka.Message{Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")})
	}
	if err := w.Write(ctx, msgs...); err != nil {
		t.Fatal(err)
	}

	start := map[int]int64{}
	for p := range parts["routed"] {
		start[p] = kafka.FirstOffset
	}
	f, err := k.NewFetcher("routed", start, kafkaio.FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := 0
	var buf []kafka.Message
	for got < len(msgs) {
		buf, err = f.Next(ctx, buf, 100)
		if err != nil {
			t.Fatalf("fetched %d of %d records: %v", got, len(msgs), err)
		}
		got += len(buf)
	}

	g, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID: "route-test", Brokers: k.Config().Brokers, Dialer: k.Dialer(), Topics: []string{"routed"},
		HeartbeatInterval: 200 * time.Millisecond, SessionTimeout: 6 * time.Second, RebalanceTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	gen, err := g.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := gen.CommitOffsets(map[string]map[int]int64{"routed": {0: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Offsets(ctx, "routed", kafkaio.AllPartitions(parts["routed"])); err != nil {
		t.Fatal(err)
	}
}

// The broker advertises its own address in metadata. With a route from that
// address to the proxy, every connection — bootstrap, partition leaders,
// group coordinator — arrives at the broker through the proxy.
func TestEveryConnectionGoesThroughTheRoutedProxy(t *testing.T) {
	t.Parallel()
	var rec kafkatest.Recorder
	b := kafkatest.Start(t, []kafkatest.Topic{{Name: "routed", Partitions: 3}}, kfake.ListenFn(rec.Listen))
	proxy := kafkatest.Forward(t, b.Addr)

	k, err := kafkaio.NewCluster(kafkaio.Config{
		Brokers: []string{proxy.Addr},
		Routes:  map[string]string{b.Addr: proxy.Addr},
	}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	exercise(t, k)

	remotes := rec.Remotes()
	if len(remotes) < 3 {
		t.Fatalf("broker accepted %d connections; the exercise should open several", len(remotes))
	}
	for _, r := range remotes {
		if !proxy.FromForwarder(r) {
			t.Errorf("broker accepted a direct connection from %s, bypassing the proxy", r)
		}
	}
	if proxy.Accepted() < len(remotes) {
		t.Errorf("proxy accepted %d connections, broker %d", proxy.Accepted(), len(remotes))
	}
}

// The control: without the route, clients follow the advertised address and
// bypass the proxy — which the check above would catch.
func TestWithoutARouteClientsBypassTheProxy(t *testing.T) {
	t.Parallel()
	var rec kafkatest.Recorder
	b := kafkatest.Start(t, []kafkatest.Topic{{Name: "routed", Partitions: 3}}, kfake.ListenFn(rec.Listen))
	proxy := kafkatest.Forward(t, b.Addr)

	k, err := kafkaio.NewCluster(kafkaio.Config{Brokers: []string{proxy.Addr}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	exercise(t, k)

	direct := 0
	for _, r := range rec.Remotes() {
		if !proxy.FromForwarder(r) {
			direct++
		}
	}
	if direct == 0 {
		t.Fatal("expected direct connections to the advertised address without a route")
	}
}

func TestRouteMatchesAddressesCaseInsensitively(t *testing.T) {
	t.Parallel()
	cfg := kafkaio.Config{Brokers: []string{"127.0.0.1:1"}, Routes: map[string]string{"LocalHost:9092": "127.0.0.1:7734"}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{
		"localhost:9092": "127.0.0.1:7734",
		"LOCALHOST:9092": "127.0.0.1:7734",
		"localhost:9093": "localhost:9093",
		"10.0.0.1:9092":  "10.0.0.1:9092",
	} {
		if got := cfg.Route(addr); got != want {
			t.Errorf("Route(%s) = %s, want %s", addr, got, want)
		}
	}
}

func TestConfigRejectsBadAddresses(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]kafkaio.Config{
		"no brokers":    {},
		"broker":        {Brokers: []string{"nohostport"}},
		"route no port": {Brokers: []string{"127.0.0.1:1"}, Routes: map[string]string{"127.0.0.1": "127.0.0.1:2"}},
		"route local":   {Brokers: []string{"127.0.0.1:1"}, Routes: map[string]string{"127.0.0.1:1": "x"}},
	} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, cfg)
		}
	}
}
