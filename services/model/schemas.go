package model

import (
	"embed"
	"fmt"
)

// The Avro schemas of the log's values, one .avsc file per topic (and one
// per v2 contract of `ratings`), registered under TopicNameStrategy
// subjects: "<topic>-value".
//
//go:embed schemas/*.avsc
var schemaFiles embed.FS

// Subject is the registry subject of a topic's values (TopicNameStrategy).
func Subject(topic string) string { return topic + "-value" }

// SchemaText is the Avro schema a producer writes to topic with; contract
// matters for `ratings` only.
func SchemaText(topic string, c Contract) (string, error) {
	name := Subject(topic)
	if topic == TopicRatings && c != ContractV1 && c != "" {
		name += "." + string(c)
	}
	b, err := schemaFiles.ReadFile("schemas/" + name + ".avsc")
	if err != nil {
		return "", fmt.Errorf("no Avro schema for topic %s (contract %s)", topic, c)
	}
	return string(b), nil
}

// ValueTopics are the topics whose values the codec writes in the lab's
// format (the DLQ keeps records as they were).
var ValueTopics = []string{TopicRatings, TopicMovies, TopicRatedMovies}
