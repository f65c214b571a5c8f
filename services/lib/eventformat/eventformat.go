// Package eventformat is how a part of the log variant reads and writes
// event values: the --format switch (json or avro) and --registry flags,
// a Confluent-API registry client with caches (franz-go's pkg/sr), and the
// metrics of both. Every producer and decoder of the log builds its
// model.Codec here.
package eventformat

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/model"
)

// Config is a part's --format and --registry.
type Config struct {
	Format   string
	Registry string // base URL of a Confluent-compatible API
}

// RegisterFlags adds --format and --registry to fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Format, "format", string(model.DefaultFormat), "event `format` of the log: json, or avro (Confluent wire format; needs --registry)")
	fs.StringVar(&c.Registry, "registry", "", "schema registry base `URL` (Confluent REST API), e.g. http://127.0.0.1:7706 or http://host:8080/apis/ccompat/v7")
}

// Codec builds the part's codec; its metrics go to reg (nil: none).
func (c *Config) Codec(reg prometheus.Registerer) (*model.Codec, error) {
	f, err := model.ParseFormat(c.Format)
	if err != nil {
		return nil, err
	}
	obs := NewMetrics(reg)
	if f == model.FormatJSON {
		return model.NewCodec(f, nil, obs)
	}
	if c.Registry == "" {
		return nil, errors.New("--format avro: --registry URL is required")
	}
	cl, err := NewClient(c.Registry, obs)
	if err != nil {
		return nil, err
	}
	return model.NewCodec(f, cl, obs)
}

// CheckURL validates a registry base URL.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("registry URL %q: want http(s)://host:port[/path]", raw)
	}
	return nil
}

// Prepare registers the part's writer schemas, retrying (bounded, logged)
// while the registry is not reachable yet: the parts start together with
// the registry, and Apicurio takes a few seconds longer.
func Prepare(ctx context.Context, codec *model.Codec, log *slog.Logger, timeout time.Duration, topics ...string) error {
	if codec.Format() != model.FormatAvro {
		return nil
	}
	deadline := time.Now().Add(timeout)
	for attempt := 1; ; attempt++ {
		err := codec.Prepare(ctx, topics...)
		if err == nil {
			log.Info("schemas registered", "topics", strings.Join(topics, ","))
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("schema registry: %w", err)
		}
		if attempt == 1 || attempt%10 == 0 {
			log.Warn("registering schemas failed; retrying", "attempt", attempt, "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Await calls fn until it returns anything but a registry-unavailable
// error (model.ErrRegistryUnavailable), or ctx ends; one attempt a second,
// logged now and then. A table that cannot decode a record while the
// registry is away waits for it rather than skipping the record.
func Await(ctx context.Context, log *slog.Logger, what string, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if !errors.Is(err, model.ErrRegistryUnavailable) {
			return err
		}
		if attempt == 1 || attempt%30 == 0 {
			log.Warn(what+": waiting for the schema registry", "attempt", attempt, "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}
