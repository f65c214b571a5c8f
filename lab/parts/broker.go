package parts

import (
	"github.com/ratingslab/lab/lab/broker"
	"github.com/ratingslab/lab/lab/layout"
)

func init() {
	Register(&Part{
		Name:      "broker",
		Variant:   VariantLab,
		Summary:   "embedded Kafka broker (kfake), data in <dir>/data/broker",
		Start:     0,
		NewRunner: func() Runner { return &broker.Runner{} },
		Args: func(env Env, _ int) []string {
			return []string{"--listen", env.Options.EmbeddedListen(env.Ports), "--data", env.Dir.BrokerData()}
		},
		// Its admin /healthz checks Kafka readiness on its own listener and
		// reports what the data dir check found at start.
		Admin:   func(p layout.Ports, _ int) string { return p.AdminBroker() },
		Addr:    func(p layout.Ports, _ int) string { return p.Broker() },
		Enabled: func(o Options) bool { return o.Kafka.PlatformName() == KafkaEmbedded },
	})
}
