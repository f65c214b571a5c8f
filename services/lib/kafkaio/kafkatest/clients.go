package kafkatest

import (
	"log/slog"
	"testing"
	"time"

	"github.com/ratingslab/lab/services/lib/kafkaio"
)

// Client opens a kafkaio client with cfg, closed when the test ends.
func Client(t testing.TB, cfg kafkaio.Config, log *slog.Logger) *kafkaio.Cluster {
	t.Helper()
	k, err := kafkaio.NewCluster(cfg, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	return k
}

// Via is the client config of a part whose every connection to the broker
// at addr goes through f, as it would through its edge proxy: the bootstrap
// address and the address the broker advertises are both f's.
func (f *Forwarder) Via(addr string) kafkaio.Config {
	return kafkaio.Config{Brokers: []string{f.Addr}, Routes: map[string]string{addr: f.Addr}, DialTimeout: time.Second}
}
