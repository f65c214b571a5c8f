package parts

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/lab/apachekafka"
	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/services/model"
)

// The real Kafka cluster (`lab up --kafka cluster`): N Apache Kafka KRaft
// nodes, each broker and controller in one JVM, run as parts broker-1..N.
// Node i listens on the port table's KafkaNode(i) (advertised as is) and
// KafkaController(i); the quorum is static. The lab's topics are created
// once the nodes formed the cluster, with replication factor 3 and
// min.insync.replicas 2. A node is healthy when it answers metadata and is
// in the ISR of every partition of the lab's topics.

// ClusterFormTimeout bounds waiting for the nodes to form the cluster.
const ClusterFormTimeout = 3 * time.Minute

func init() {
	Register(&Part{
		Name:      "kafka-node",
		Variant:   VariantLab,
		Summary:   "one Apache Kafka KRaft node (broker+controller); `lab up --kafka cluster` runs them as broker-1..N",
		Start:     0,
		NewRunner: func() Runner { return &apachekafka.Runner{} },
		Args: func(env Env, i int) []string {
			k := env.Options.Kafka
			pol := apachekafka.PolicyFor(k.NodeCount())
			heap := k.Heap
			if heap == "" {
				heap = "256m"
			}
			return []string{
				"--node-id", strconv.Itoa(i + 1),
				"--listen", env.Ports.KafkaNode(i),
				"--controller", env.Ports.KafkaController(i),
				"--voters", quorumVoters(env.Ports, k.NodeCount()),
				"--data", env.Dir.Data(KafkaNodeName(int32(i + 1))),
				"--cluster-id", k.ClusterID,
				"--kafka-home", k.Home,
				"--java", k.Java,
				"--heap", heap,
				"--replication", strconv.Itoa(pol.Replication),
				"--min-isr", strconv.Itoa(pol.MinISR),
			}
		},
		Ready: func(ctx context.Context, p layout.Ports, i int) error {
			return apachekafka.NodeReady(ctx, p.KafkaNode(i), int32(i+1), model.Topics)
		},
		Addr:    func(p layout.Ports, i int) string { return p.KafkaNode(i) },
		Enabled: func(o Options) bool { return o.Kafka.PlatformName() == KafkaCluster },
		Count:   func(o Options) int { return o.Kafka.NodeCount() },
		NameOf:  func(i int) string { return KafkaNodeName(int32(i + 1)) },
		Setup: func(ctx context.Context, env Env) error {
			boot := env.Options.KafkaBootstrap(env.Ports)
			n := env.Options.Kafka.NodeCount()
			if err := apachekafka.WaitBrokers(ctx, boot, n, ClusterFormTimeout); err != nil {
				return err
			}
			c := &kafka.Client{Addr: kafka.TCP(boot...), Timeout: 30 * time.Second}
			_, err := apachekafka.EnsureTopics(ctx, c, model.Topics, apachekafka.PolicyFor(n))
			return err
		},
	})
}

// quorumVoters is controller.quorum.voters for n lab nodes.
func quorumVoters(p layout.Ports, n int) string {
	vs := make([]string, n)
	for i := range vs {
		vs[i] = fmt.Sprintf("%d@%s", i+1, p.KafkaController(i))
	}
	return strings.Join(vs, ",")
}
