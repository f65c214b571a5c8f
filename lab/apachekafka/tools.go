package apachekafka

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"sort"
	"strings"
)

// Tools are Kafka's own command-line tools the lab can run from a
// distribution's jars (the classes behind bin/kafka-*.sh).
var Tools = map[string]string{
	"kafka-consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
	"kafka-topics":          "org.apache.kafka.tools.TopicCommand",
	"kafka-get-offsets":     "org.apache.kafka.tools.GetOffsetShell",
	"kafka-leader-election": "org.apache.kafka.tools.LeaderElectionCommand",
	"kafka-configs":         "kafka.admin.ConfigCommand",
}

// RunTool runs one of Tools (e.g. "kafka-consumer-groups", "--bootstrap-server",
// addr, "--describe", "--group", g) with a small heap and returns its
// standard output; its log goes nowhere (log4j2's default: errors only).
func RunTool(ctx context.Context, home Home, java Java, tool string, args ...string) (string, error) {
	class, ok := Tools[tool]
	if !ok {
		names := make([]string, 0, len(Tools))
		for n := range Tools {
			names = append(names, n)
		}
		sort.Strings(names)
		return "", fmt.Errorf("unknown Kafka tool %q (known: %s)", tool, strings.Join(names, ", "))
	}
	jvm := []string{"-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", home.Libs(), class}
	cmd := exec.CommandContext(ctx, java.Path, slices.Concat(jvm, args)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v\n%s%s", tool, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out), nil
}

// GroupRow is one row of `kafka-consumer-groups --describe`.
type GroupRow struct {
	Group, Topic string
	Partition    int
	Current      int64 // -1 for "-" (no committed offset)
	LogEnd       int64
	ConsumerID   string // "-" when no member owns the partition
}

// ParseGroupDescribe reads the table `kafka-consumer-groups --describe` prints.
func ParseGroupDescribe(out string) ([]GroupRow, error) {
	var rows []GroupRow
	header := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if f[0] == "GROUP" {
			header = true
			continue
		}
		if !header || len(f) < 7 {
			continue
		}
		var r GroupRow
		r.Group, r.Topic, r.ConsumerID = f[0], f[1], f[6]
		if _, err := fmt.Sscan(f[2], &r.Partition); err != nil {
			return nil, fmt.Errorf("partition %q in %q", f[2], line)
		}
		r.Current = -1
		if f[3] != "-" {
			if _, err := fmt.Sscan(f[3], &r.Current); err != nil {
				return nil, fmt.Errorf("current offset %q in %q", f[3], line)
			}
		}
		if _, err := fmt.Sscan(f[4], &r.LogEnd); err != nil {
			return nil, fmt.Errorf("log end offset %q in %q", f[4], line)
		}
		rows = append(rows, r)
	}
	if !header {
		return nil, fmt.Errorf("no GROUP table in the output:\n%s", out)
	}
	return rows, nil
}
