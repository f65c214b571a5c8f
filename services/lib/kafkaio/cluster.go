package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/segmentio/kafka-go"
)

// Cluster holds one part's connections to the brokers: a routed transport
// (Writer, Client) and a routed dialer (Reader, ConsumerGroup) sharing one
// route table. Create it once per process; it is safe for concurrent use.
type Cluster struct {
	cfg       Config
	log       *slog.Logger
	metrics   *Metrics
	transport *kafka.Transport
	dialer    *kafka.Dialer
	client    *kafka.Client
}

// NewCluster validates cfg and builds the routed clients. It does not dial:
// use WaitForTopics to find out whether the brokers answer. m may be nil
// (nothing is counted).
func NewCluster(cfg Config, m *Metrics, log *slog.Logger) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = discardMetrics()
	}
	k := &Cluster{cfg: cfg, log: log, metrics: m}
	k.transport = &kafka.Transport{
		Dial:        k.Dial,
		DialTimeout: cfg.DialTimeout,
		ClientID:    cfg.ClientID,
		IdleTimeout: 30 * time.Second,
		MetadataTTL: 5 * time.Second,
	}
	k.dialer = &kafka.Dialer{
		ClientID: cfg.ClientID,
		DialFunc: k.Dial,
		Timeout:  cfg.DialTimeout,
	}
	k.client = &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: k.transport, Timeout: 10 * time.Second}
	return k, nil
}

// Dial is the one place where kafka-go opens connections: the address
// (bootstrap, or a broker learned from metadata) is mapped through the route
// table first.
func (k *Cluster) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	target := k.cfg.Route(address)
	d := net.Dialer{Timeout: k.cfg.DialTimeout, KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, network, target)
	if err != nil {
		if target != address {
			return nil, fmt.Errorf("dial broker %s via %s: %w: %w", address, target, errNotConnected, err)
		}
		return nil, fmt.Errorf("dial broker %s: %w: %w", address, errNotConnected, err)
	}
	return conn, nil
}

// errNotConnected marks a failed dial: whatever was to go over the
// connection was certainly not sent.
var errNotConnected = errors.New("not connected")

// Config is the validated configuration.
func (k *Cluster) Config() Config { return k.cfg }

// Metrics is where the cluster's clients count.
func (k *Cluster) Metrics() *Metrics { return k.metrics }

// Dialer is for kafka-go APIs that take a *kafka.Dialer (Reader, ConsumerGroup).
func (k *Cluster) Dialer() *kafka.Dialer { return k.dialer }

// Transport is for kafka-go APIs that take a RoundTripper (Writer, Client).
func (k *Cluster) Transport() *kafka.Transport { return k.transport }

// Client is a routed admin client (metadata, offsets).
func (k *Cluster) Client() *kafka.Client { return k.client }

// Close drops idle connections.
func (k *Cluster) Close() { k.transport.CloseIdleConnections() }

// kafkaLogger adapts kafka-go's Printf logging to slog. kafka-go reports
// retries through its error logger; they are warnings, not failures.
func kafkaLogger(log *slog.Logger, level slog.Level, component string) kafka.Logger {
	return kafka.LoggerFunc(func(format string, args ...any) {
		log.Log(context.Background(), level, fmt.Sprintf(format, args...), "component", component)
	})
}

// WriterOptions tune a Writer; zero values mean the lab defaults.
type WriterOptions struct {
	// Balancer picks the partition (default: CRC32 of the key, like kcat and librdkafka).
	Balancer kafka.Balancer
	// BatchSize is the most records per produce request per partition (default 1000).
	BatchSize int
	// BatchTimeout is how long a partial batch waits for more (default 5ms).
	BatchTimeout time.Duration
	// MaxAttempts bounds retries of one batch (default 5). The caller's
	// context bounds the total time.
	MaxAttempts int
}

// Writer returns a producer for topic with acks=all. A failed WriteMessages
// may still have written (the broker may have appended before the answer was
// lost): consumers dedupe by request id.
func (k *Cluster) Writer(topic string, o WriterOptions) *Producer {
	if o.Balancer == nil {
		o.Balancer = &kafka.CRC32Balancer{}
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	if o.BatchTimeout <= 0 {
		o.BatchTimeout = 5 * time.Millisecond
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	w := &kafka.Writer{
		Addr:                   kafka.TCP(k.cfg.Brokers...),
		Topic:                  topic,
		Balancer:               o.Balancer,
		RequiredAcks:           kafka.RequireAll,
		BatchSize:              o.BatchSize,
		BatchBytes:             1 << 20,
		BatchTimeout:           o.BatchTimeout,
		MaxAttempts:            o.MaxAttempts,
		WriteBackoffMin:        50 * time.Millisecond,
		WriteBackoffMax:        500 * time.Millisecond,
		Transport:              k.transport,
		AllowAutoTopicCreation: false,
		ErrorLogger:            kafkaLogger(k.log, slog.LevelWarn, "writer "+topic),
	}
	return &Producer{w: w, topic: topic, metrics: k.metrics}
}

// Producer is a kafka-go Writer that counts what the broker acknowledged.
type Producer struct {
	w       *kafka.Writer
	topic   string
	metrics *Metrics
}

// Write produces msgs and returns once the broker acknowledged all of them
// (acks=all) or ctx ends. On error some may have been written.
func (p *Producer) Write(ctx context.Context, msgs ...kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	err := p.w.WriteMessages(ctx, msgs...)
	if r := p.w.Stats().Retries; r > 0 {
		p.metrics.produceRetries.WithLabelValues(p.topic).Add(float64(r))
	}
	if err != nil {
		p.metrics.produceErrors.WithLabelValues(p.topic, ErrorName(err)).Inc()
	}
	if err == nil {
		p.metrics.produced.WithLabelValues(p.topic).Add(float64(len(msgs)))
		return nil
	}
	if werrs, ok := err.(kafka.WriteErrors); ok {
		p.metrics.produced.WithLabelValues(p.topic).Add(float64(len(msgs) - werrs.Count()))
	}
	return fmt.Errorf("produce to %s: %w", p.topic, err)
}

// Topic is the topic this producer writes to.
func (p *Producer) Topic() string { return p.topic }

// Close flushes pending batches and releases the writer.
func (p *Producer) Close() error { return p.w.Close() }
