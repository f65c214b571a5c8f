// Package kafkaio is segmentio/kafka-go configured for the lab: every client
// part builds its Kafka clients here, so that they all
//
//   - dial through the part's own fault proxy: the bootstrap address is the
//     proxy, and every broker address learned from metadata is mapped through
//     a route table (--broker-route advertised=local) before it is dialed, so
//     no connection can bypass the proxy;
//   - produce with acks=all and small batches (kafka-go's defaults, no acks
//     and one-second batches, would make the audit meaningless);
//   - wait, bounded and visibly, for the topics they need: a kafka-go group
//     reader blocks forever on a missing topic, which from outside looks like
//     a healthy idle consumer;
//   - count what they produce and consume, and export consumer lag.
//
// Two ways of reading are offered: Fetcher (given partitions from given
// offsets, for consumers that keep their own offsets) and Tailer (every
// partition of a topic, applying batches to a local table).
package kafkaio

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"strings"
	"time"
)

// Config is how a part reaches the brokers.
type Config struct {
	// Brokers are the bootstrap addresses (the part's edge proxy in a lab).
	Brokers []string
	// Routes maps a broker address as advertised in metadata to the address
	// to dial instead. Addresses without a route are dialed as they are.
	Routes map[string]string
	// ClientID names the part in the broker's logs and group listings.
	ClientID string
	// DialTimeout bounds one TCP connect (default 5s).
	DialTimeout time.Duration
}

// RegisterFlags adds --brokers and --broker-route (repeatable) to fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Func("brokers", "bootstrap broker `host:port[,host:port...]` (a lab hands each part its own edge proxy)", func(s string) error {
		c.Brokers = nil
		for _, b := range strings.Split(s, ",") {
			if b = strings.TrimSpace(b); b != "" {
				c.Brokers = append(c.Brokers, b)
			}
		}
		return nil
	})
	fs.Func("broker-route", "dial `advertised=local` instead of an address learned from metadata (repeatable); keeps all broker traffic on the fault proxy", func(s string) error {
		adv, local, ok := strings.Cut(s, "=")
		if !ok {
			return fmt.Errorf("want advertised=local, got %q", s)
		}
		if c.Routes == nil {
			c.Routes = map[string]string{}
		}
		c.Routes[strings.TrimSpace(adv)] = strings.TrimSpace(local)
		return nil
	})
}

// Validate checks every address and normalizes the route table.
func (c *Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("--brokers: at least one broker address is required")
	}
	for _, b := range c.Brokers {
		if _, err := canonical(b); err != nil {
			return fmt.Errorf("--brokers %q: %w", b, err)
		}
	}
	routes := make(map[string]string, len(c.Routes))
	for adv, local := range c.Routes {
		a, err := canonical(adv)
		if err != nil {
			return fmt.Errorf("--broker-route %s=%s: advertised address: %w", adv, local, err)
		}
		if _, err := canonical(local); err != nil {
			return fmt.Errorf("--broker-route %s=%s: local address: %w", adv, local, err)
		}
		routes[a] = local
	}
	c.Routes = routes
	if c.DialTimeout <= 0 {
		c.DialTimeout = 5 * time.Second
	}
	return nil
}

// canonical spells host:port one way, so "LOCALHOST:9092" and
// "localhost:9092" find the same route.
func canonical(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("want host:port: %w", err)
	}
	if host == "" || port == "" {
		return "", errors.New("want host:port with both parts")
	}
	return net.JoinHostPort(strings.ToLower(host), port), nil
}

// Route returns the address to dial for addr: its route when it has one,
// addr itself otherwise.
func (c *Config) Route(addr string) string {
	if local, ok := c.Routes[addr]; ok {
		return local
	}
	if a, err := canonical(addr); err == nil {
		if local, ok := c.Routes[a]; ok {
			return local
		}
	}
	return addr
}
