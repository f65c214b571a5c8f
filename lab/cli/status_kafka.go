package cli

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/lab/supervisor"
)

// kafkaStatus says which Kafka the log variant runs on and where the lab's
// tools (and yours: kcat, kafka-consumer-groups) reach it.
func kafkaStatus(_ *globals, _ *supervisor.Client, r *statusReport) []string {
	if r.Lab == nil {
		return nil
	}
	var o parts.Options
	b, _ := json.Marshal(r.Lab.Options)
	if json.Unmarshal(b, &o) != nil {
		return nil
	}
	p := layout.Ports{Base: r.Lab.PortBase}
	boot := strings.Join(o.KafkaBootstrap(p), ",")
	r.Extras["kafka"] = map[string]any{"platform": o.Kafka.PlatformName(), "bootstrap": o.KafkaBootstrap(p), "nodes": o.KafkaNodes(p)}
	var what string
	switch o.Kafka.PlatformName() {
	case parts.KafkaCluster:
		what = fmt.Sprintf("cluster of %d Apache Kafka KRaft nodes (broker-1..%d; topics RF %d, min.insync.replicas 2)", o.Kafka.NodeCount(), o.Kafka.NodeCount(), min(3, o.Kafka.NodeCount()))
	case parts.KafkaExternal:
		what = fmt.Sprintf("your cluster (%d brokers; no broker parts)", len(o.Kafka.Brokers))
	default:
		what = "embedded broker (kfake)"
		if n := o.Kafka.Nodes; n > 1 {
			what = fmt.Sprintf("embedded broker (kfake), %d nodes broker-1..%d in one process, one shared log; protocol faults: lab chaos list", n, n)
		}
	}
	lines := []string{"", "Kafka: " + what, "  bootstrap " + boot + "   (kcat -b " + boot + " -L)"}
	return append(lines, restoreStatus(o, p, r.Extras)...)
}
