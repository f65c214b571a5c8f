package cli

import (
	"context"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/parts"
)

func TestClusterIDIsStableAndNeverLooksLikeAnOption(t *testing.T) {
	valid := regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]{21}$`)
	for range 200 {
		dir := layout.Dir(t.TempDir())
		id, err := clusterID(dir)
		if err != nil || !valid.MatchString(id) {
			t.Fatalf("cluster id %q, %v", id, err)
		}
		again, _ := clusterID(dir)
		if again != id {
			t.Fatalf("cluster id changed: %s → %s", id, again)
		}
	}
}

// A state directory stays on the Kafka it started with.
func TestCheckPlatformRefusesAnotherKafka(t *testing.T) {
	dir := layout.Dir(t.TempDir())
	if err := checkPlatform(dir, parts.KafkaOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := checkPlatform(dir, parts.KafkaOptions{}); err != nil {
		t.Fatalf("same platform again: %v", err)
	}
	err := checkPlatform(dir, parts.KafkaOptions{Platform: parts.KafkaCluster, ClusterID: "AAAAAAAAAAAAAAAAAAAAAA"})
	if err == nil || !strings.Contains(err.Error(), `last ran on Kafka "embedded"`) || !strings.Contains(err.Error(), "another --dir") {
		t.Fatalf("switching platforms: %v", err)
	}
	// A directory from before platforms were recorded, with service state.
	old := layout.Dir(t.TempDir())
	os.MkdirAll(old.Data("ratings-stream"), 0o755)
	if err := checkPlatform(old, parts.KafkaOptions{Platform: parts.KafkaExternal, Bootstrap: []string{"127.0.0.1:9092"}}); err == nil {
		t.Fatal("an old embedded directory moved to an external cluster")
	}
}

func TestKafkaFlagsRejectBadCombinations(t *testing.T) {
	g := &globals{getenv: func(string) string { return "" }, stdout: io.Discard, stderr: io.Discard, dirFlag: t.TempDir()}
	for _, c := range []struct {
		f    kafkaFlags
		want string
	}{
		{kafkaFlags{platform: "clutser"}, `--kafka "clutser": must be embedded or cluster`},
		{kafkaFlags{platform: "cluster", bootstrap: "127.0.0.1:9092"}, "cannot be combined with --kafka cluster"},
		{kafkaFlags{home: "/opt/kafka"}, "apply to --kafka cluster only"},
		{kafkaFlags{bootstrap: "nohost"}, `--kafka-bootstrap "nohost": want host:port`},
		{kafkaFlags{bootstrap: " , "}, "want host:port"},
		{kafkaFlags{platform: "cluster", home: "/nonexistent/kafka"}, "--kafka-home /nonexistent/kafka: no such directory"},
		{kafkaFlags{platform: "cluster", nodes: 3}, "--kafka-nodes applies to the embedded broker only"},
		{kafkaFlags{nodes: 4}, "--kafka-nodes 4: must be from 1 to 3"},
		{kafkaFlags{nodes: -1}, "--kafka-nodes -1: must be from 1 to 3"},
	} {
		_, _, err := c.f.options(context.Background(), g, layout.Ports{Base: 20000})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.f, err, c.want)
		}
	}
	if o, _, err := (&kafkaFlags{}).options(context.Background(), g, layout.Ports{Base: 20000}); err != nil || o.PlatformName() != parts.KafkaEmbedded {
		t.Errorf("no flags: %+v %v, want the embedded broker", o, err)
	}
	if o, _, err := (&kafkaFlags{nodes: 3}).options(context.Background(), g, layout.Ports{Base: 20000}); err != nil || o.PlatformName() != parts.KafkaEmbedded || o.Nodes != 3 {
		t.Errorf("--kafka-nodes 3: %+v %v, want a three-node embedded broker", o, err)
	}
}
