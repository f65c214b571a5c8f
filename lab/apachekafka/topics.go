package apachekafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/model"
)

// TopicPolicy is how the lab's topics are replicated on a real cluster.
type TopicPolicy struct {
	Replication int // replication factor (3 on the lab's cluster)
	MinISR      int // min.insync.replicas (2)
}

// PolicyFor is the lab's policy for a cluster of n brokers: RF 3 and
// min.insync.replicas 2, or as much as n brokers allow.
func PolicyFor(brokers int) TopicPolicy {
	rf := min(3, max(brokers, 1))
	return TopicPolicy{Replication: rf, MinISR: min(2, rf)}
}

// configs are a topic's wanted configs under the policy.
func (p TopicPolicy) configs(t model.Topic) map[string]string {
	out := map[string]string{"min.insync.replicas": strconv.Itoa(p.MinISR)}
	for k, v := range t.Configs {
		out[k] = v
	}
	return out
}

// EnsureTopics creates every missing topic with the policy and checks the
// ones that exist: partition count, replication factor and configs must be
// what the lab wants, or it fails naming each difference (nothing is
// changed on the cluster then). It returns the topics it created.
func EnsureTopics(ctx context.Context, c *kafka.Client, topics []model.Topic, p TopicPolicy) ([]string, error) {
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t.Name
	}
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: names})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	have := map[string]kafka.Topic{}
	for _, t := range md.Topics {
		if t.Error == nil && len(t.Partitions) > 0 {
			have[t.Name] = t
		}
	}
	var problems []string
	var create []kafka.TopicConfig
	for _, t := range topics {
		got, ok := have[t.Name]
		if !ok {
			tc := kafka.TopicConfig{Topic: t.Name, NumPartitions: int(t.Partitions), ReplicationFactor: p.Replication}
			for k, v := range sortedConfigs(p.configs(t)) {
				tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: v})
			}
			create = append(create, tc)
			continue
		}
		if len(got.Partitions) != int(t.Partitions) {
			problems = append(problems, fmt.Sprintf("topic %s has %d partitions, the lab wants %d", t.Name, len(got.Partitions), t.Partitions))
		}
		if rf := len(got.Partitions[0].Replicas); rf != p.Replication {
			problems = append(problems, fmt.Sprintf("topic %s has replication factor %d, the lab wants %d", t.Name, rf, p.Replication))
		}
	}
	if len(have) > 0 {
		diff, err := configDiff(ctx, c, topics, have, p)
		if err != nil {
			return nil, err
		}
		problems = append(problems, diff...)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("the cluster's topics differ from what the lab needs (nothing was changed):\n  %s\ndelete those topics (kafka-topics --delete) or use another cluster", strings.Join(problems, "\n  "))
	}
	if len(create) == 0 {
		return nil, nil
	}
	res, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: create, ValidateOnly: false})
	if err != nil {
		return nil, fmt.Errorf("create topics: %w", err)
	}
	var created []string
	for _, tc := range create {
		if err := res.Errors[tc.Topic]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return created, fmt.Errorf("create topic %s (%d partitions, replication factor %d): %w", tc.Topic, tc.NumPartitions, tc.ReplicationFactor, err)
		}
		created = append(created, tc.Topic)
	}
	return created, nil
}

// sortedConfigs iterates configs by name (stable requests and messages).
func sortedConfigs(m map[string]string) func(func(string, string) bool) {
	return func(yield func(string, string) bool) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !yield(k, m[k]) {
				return
			}
		}
	}
}

// configDiff reads the existing topics' configs and names every wanted
// value they do not have.
func configDiff(ctx context.Context, c *kafka.Client, topics []model.Topic, have map[string]kafka.Topic, p TopicPolicy) ([]string, error) {
	req := &kafka.DescribeConfigsRequest{}
	for _, t := range topics {
		if _, ok := have[t.Name]; ok {
			req.Resources = append(req.Resources, kafka.DescribeConfigRequestResource{ResourceType: kafka.ResourceTypeTopic, ResourceName: t.Name})
		}
	}
	res, err := c.DescribeConfigs(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("describe topic configs: %w", err)
	}
	got := map[string]map[string]string{}
	for _, r := range res.Resources {
		if r.Error != nil {
			return nil, fmt.Errorf("describe configs of topic %s: %w", r.ResourceName, r.Error)
		}
		m := map[string]string{}
		for _, e := range r.ConfigEntries {
			m[e.ConfigName] = e.ConfigValue
		}
		got[r.ResourceName] = m
	}
	var out []string
	for _, t := range topics {
		if _, ok := have[t.Name]; !ok {
			continue
		}
		for k, v := range sortedConfigs(p.configs(t)) {
			if g, ok := got[t.Name][k]; !ok || g != v {
				out = append(out, fmt.Sprintf("topic %s has %s=%s, the lab wants %s", t.Name, k, orNone(g), v))
			}
		}
	}
	return out, nil
}

func orNone(s string) string {
	if s == "" {
		return "(unset)"
	}
	return s
}

// Brokers asks bootstrap for the cluster's brokers (metadata), bounded by
// timeout, with an error naming the addresses when none answers.
func Brokers(ctx context.Context, bootstrap []string, timeout time.Duration) ([]kafka.Broker, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tr := &kafka.Transport{DialTimeout: timeout, ClientID: "lab"}
	defer tr.CloseIdleConnections() // else it refreshes the metadata for as long as the process lives
	c := &kafka.Client{Addr: kafka.TCP(bootstrap...), Timeout: timeout, Transport: tr}
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{}})
	if err != nil {
		return nil, fmt.Errorf("no broker at %s answered within %s: %w", strings.Join(bootstrap, ","), timeout, err)
	}
	bs := slices.Clone(md.Brokers)
	sort.Slice(bs, func(i, j int) bool { return bs[i].ID < bs[j].ID })
	return bs, nil
}
