package kafkaio

import (
	"context"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// FranzOpts are the options of a franz-go (kgo) client that reaches the
// brokers exactly like this Cluster's kafka-go clients: the same bootstrap
// addresses, every address (bootstrap or learned from metadata) dialed
// through the same route table — the part's own edge proxy — and the same
// client id. extra come last and may override them.
//
// The lab uses franz-go only where kafka-go cannot serve (docs/events.md):
// Kafka transactions, the idempotent producer, and read_committed
// consumption of topics written in transactions (kafka-go hands out aborted
// records and transaction markers as if they were data).
func (k *Cluster) FranzOpts(extra ...kgo.Opt) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(k.cfg.Brokers...),
		kgo.Dialer(k.Dial),
		kgo.WithLogger(franzLogger{k.log}),
		// The lab's brokers come and go (kill, pause, leader moves): notice
		// a new leader within seconds, like the kafka-go transport.
		kgo.MetadataMaxAge(5 * time.Second),
		kgo.MetadataMinAge(250 * time.Millisecond),
	}
	if k.cfg.ClientID != "" {
		opts = append(opts, kgo.ClientID(k.cfg.ClientID))
	}
	return append(opts, extra...)
}

// franzLogger sends franz-go's log lines to slog. franz-go logs every
// transaction and rebalance step at info level: those are debug lines here,
// its warnings and errors stay what they are.
type franzLogger struct{ log *slog.Logger }

func (l franzLogger) Level() kgo.LogLevel {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		return kgo.LogLevelDebug
	}
	return kgo.LogLevelWarn
}

func (l franzLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lvl := slog.LevelDebug
	switch level {
	case kgo.LogLevelError:
		lvl = slog.LevelError
	case kgo.LogLevelWarn:
		lvl = slog.LevelWarn
	}
	l.log.Log(context.Background(), lvl, msg, append(keyvals, "component", "franz-go")...)
}
