package dashboards

import (
	"github.com/ratingslab/lab/services/lib/metricname"
	"github.com/ratingslab/lab/services/lib/variantname"
)

// The Kafka dashboard reads the clients' metrics: the lab has no broker
// exporter (kfake in native mode), and the clients know what matters here —
// what was acknowledged, what was applied, and how far behind each
// consumer group is. A consumer group is a part (ratings-stream replicas
// share one group; each has its own partitions).

func kafka() board {
	scope := []string{re("topic", "$topic"), re("part", "$group")}
	topicOnly := []string{re("topic", "$topic")}
	return board{
		file:  "kafka",
		uid:   "lab-kafka",
		title: "Kafka — topics, partitions, consumer groups",
		description: "Per topic and partition rates and lag per consumer group, from the Kafka clients of the log variant " +
			"(lab_kafka_* metrics; there is no broker exporter).",
		tags: []string{"ratings-lab", "kafka"},
		vars: []variable{
			{name: "topic", display: "Topic", kind: queryVariable,
				match: `{__name__=~"` + metricname.KafkaProducedMessagesTotal + "|" + metricname.KafkaConsumedMessagesTotal + `"}`, label: "topic", live: allValue},
			{name: "group", display: "Consumer group (part)", kind: queryVariable,
				match: metricname.KafkaConsumerLagMessages, label: "part", live: allValue},
		},
		rows: []row{
			{id: 100, title: "Topics", panels: []panel{
				withTitle(kafkaRate(101, metricname.KafkaProducedMessagesTotal, "topic", "{{topic}}", topicOnly...), "Produced per topic", 8),
				withTitle(kafkaRate(102, metricname.KafkaConsumedMessagesTotal, "part, topic", "{{part}} ← {{topic}}", scope...), "Consumed per topic and group", 8),
				withTitle(kafkaRate(103, metricname.KafkaProducedMessagesTotal, "part, topic", "{{part}} → {{topic}}", topicOnly...), "Produced per producer and topic", 8),
			}},
			{id: 200, title: "Partitions", panels: []panel{
				withTitle(consumerLag(201, "part, topic, partition", "{{part}} {{topic}}/{{partition}}", scope...), "Lag per group, topic and partition", 12),
				lagGrowth(202, scope),
			}},
			{id: 300, title: "Consumer groups", panels: []panel{
				withTitle(consumerLag(301, "part", "{{part}}", scope...), "Lag per group", 12),
				withTitle(consumerLag(302, "part, topic", "{{part}} {{topic}}", scope...), "Lag per group and topic", 12),
			}},
			contractsRow(),
		},
	}
}

// lagGrowth is the per-partition rate the log variant falls behind (or
// catches up): produce rate minus apply rate, which the client counters
// cannot give per partition.
func lagGrowth(id uint32, scope []string) panel {
	lag := sel(metricname.KafkaConsumerLagMessages, scope...)
	return panel{
		id: id, kind: timeSeries, variant: variantname.Stream, width: 12, height: 8,
		title: "Lag growth per partition",
		description: "Change of each partition's lag per second: positive while records arrive faster than the group applies them, " +
			"negative while it catches up.",
		unit:    "mps",
		queries: []query{{expr: sumBy("part, topic, partition", "deriv("+lag+"["+rateWindow+"])"), legend: "{{part}} {{topic}}/{{partition}}", requires: []string{lag}}},
	}
}
