#!/bin/bash
# Creates the log variant's topics on the compose stack's Kafka, as the
# native lab's embedded broker does at start (lab/broker.Topics; the compose
# test checks the two lists agree). Idempotent: safe on every `up`.
set -euo pipefail
bootstrap="${BOOTSTRAP:-kafka:9092}"
kafka_topics=/opt/kafka/bin/kafka-topics.sh

create() {
  "$kafka_topics" --bootstrap-server "$bootstrap" --create --if-not-exists --replication-factor 1 "$@"
}

create --topic ratings --partitions 6 --config retention.bytes=-1 --config retention.ms=-1
create --topic movies --partitions 1 --config cleanup.policy=compact --config retention.bytes=-1 --config retention.ms=-1
create --topic rated-movies --partitions 6 --config cleanup.policy=compact --config retention.bytes=-1 --config retention.ms=-1
create --topic ratings-dlq --partitions 1 --config retention.bytes=-1 --config retention.ms=-1
create --topic ratings-stream-changelog --partitions 6 --config cleanup.policy=compact --config retention.bytes=-1 --config retention.ms=-1 --config segment.ms=60000
# The request ids counted expire by time: kept 30 minutes (twice ratings-stream's --request-id-retention), not forever.
create --topic ratings-stream-request-ids --partitions 6 --config cleanup.policy=delete --config retention.bytes=-1 --config retention.ms=1800000 --config segment.ms=60000

# Topics created before the lab kept records forever: set it on every run.
for topic in ratings movies rated-movies ratings-dlq ratings-stream-changelog; do
  /opt/kafka/bin/kafka-configs.sh --bootstrap-server "$bootstrap" --alter --entity-type topics \
    --entity-name "$topic" --add-config retention.ms=-1,retention.bytes=-1
done
/opt/kafka/bin/kafka-configs.sh --bootstrap-server "$bootstrap" --alter --entity-type topics \
  --entity-name ratings-stream-request-ids --add-config retention.ms=1800000,retention.bytes=-1

"$kafka_topics" --bootstrap-server "$bootstrap" --describe
