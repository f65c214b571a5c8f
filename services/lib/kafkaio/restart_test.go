package kafkaio_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/kafkatest"
	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
)

func TestTailerRecoversAfterBrokerRestart(t *testing.T) {
	t.Parallel()
	t.Run("kafka-go", func(t *testing.T) { t.Parallel(); tailerRecoversAfterBrokerRestart(t, false) })
	t.Run("read committed (franz-go)", func(t *testing.T) { t.Parallel(); tailerRecoversAfterBrokerRestart(t, true) })
}

func tailerRecoversAfterBrokerRestart(t *testing.T, committed bool) {
	b := kafkatest.StartDurable(t)
	proxy := kafkatest.Forward(t, b.Addr)
	log := slog.New(slog.DiscardHandler)
	k, err := kafkaio.NewCluster(kafkaio.Config{Brokers: []string{proxy.Addr}, Routes: map[string]string{b.Addr: proxy.Addr}}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	w := k.Writer(model.TopicMovies, kafkaio.WriterOptions{})
	defer w.Close()
	produce := func(id int) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := w.Write(wctx, kafka.Message{Key: fmt.Appendf(nil, "%d", id), Value: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[string]bool{}
	tl := k.NewTailer(model.TopicMovies, 1, nil, func(_ context.Context, batch []kafka.Message) error {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range batch {
			seen[string(m.Key)] = true
		}
		return nil
	})
	if committed {
		tl.ReadCommitted()
	}
	done := make(chan error, 1)
	go func() { done <- tl.Run(ctx) }()
	has := func(key string) func() error {
		return func() error {
			mu.Lock()
			defer mu.Unlock()
			if !seen[key] {
				return fmt.Errorf("record %s not applied", key)
			}
			return nil
		}
	}
	produce(1)
	servetest.Eventually(t, 10*time.Second, "first record", has("1"))

	b.Stop()
	stopped := time.Now()
	// Long enough for kafka-go to give up its quiet retries and report
	// reconnect failures (EOF through the proxy) to the Fetcher.
	servetest.Eventually(t, 15*time.Second, "tailer reports a lasting outage", func() error {
		if tl.Err() == nil {
			return fmt.Errorf("no error reported")
		}
		if time.Since(stopped) < 4*time.Second {
			return fmt.Errorf("outage only %s old", time.Since(stopped))
		}
		return nil
	})
	t.Logf("during the outage: %v", tl.Err())
	b.Start(t)
	restarted := time.Now()
	servetest.Eventually(t, 5*time.Second, "tailer healthy after the restart", tl.Err)
	t.Logf("healthy %s after the restart", time.Since(restarted).Round(time.Millisecond))
	produce(2)
	servetest.Eventually(t, 5*time.Second, "record produced after the restart", has("2"))
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
