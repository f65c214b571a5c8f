package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/lab/apachekafka"
	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/services/model"
)

// kafkaFlags are `lab up`'s choice of Kafka platform.
type kafkaFlags struct {
	platform  string
	bootstrap string
	home      string
	heap      string
	nodes     int // --kafka-nodes: nodes of the embedded broker
}

const kafkaFlagsHelp = `
Kafka platforms (the log variant's broker):
  --kafka embedded     one embedded broker (kfake) as the part "broker": starts in
                       seconds, needs no Java (default)
  --kafka-nodes 3      the embedded broker runs 3 kfake nodes (broker-1..3) in its
                       one process, one log shared by all (no replication); each
                       client reaches each node through its own edge proxy; for
                       node loss, leader moves and coordinator moves in seconds
  --kafka cluster      three Apache Kafka KRaft nodes as parts broker-1..3, from
                       --kafka-home / KAFKA_HOME or the jars 'make kafka' fetched
                       into .cache/kafka; topics with replication factor 3 and
                       min.insync.replicas 2; needs Java 17+
  --kafka-bootstrap H:P[,H:P...]
                       your own cluster (no broker parts): the lab's topics are
                       created if missing (RF 3, min ISR 2, or what fewer brokers
                       allow) and checked if present; each client reaches each
                       broker through its own edge proxy (at most 3 brokers).
                       PLAINTEXT only: no TLS or SASL.`

// kafkaOptions resolves the flags into the lab's Kafka options: it finds
// Kafka and Java for a cluster, or asks an external cluster for its brokers
// and makes sure its topics are right. Nothing is started here.
func (k *kafkaFlags) options(ctx context.Context, g *globals, ports layout.Ports) (parts.KafkaOptions, []string, error) {
	var notes []string
	platform := k.platform
	if k.bootstrap != "" {
		if platform != "" && platform != parts.KafkaExternal {
			return parts.KafkaOptions{}, nil, fmt.Errorf("--kafka-bootstrap uses your own cluster; it cannot be combined with --kafka %s", platform)
		}
		platform = parts.KafkaExternal
	}
	if platform == "" {
		platform = parts.KafkaEmbedded
	}
	if platform != parts.KafkaCluster && (k.home != "" || k.heap != "") {
		return parts.KafkaOptions{}, nil, fmt.Errorf("--kafka-home and --kafka-heap apply to --kafka cluster only")
	}
	if k.nodes != 0 && platform != parts.KafkaEmbedded {
		return parts.KafkaOptions{}, nil, fmt.Errorf("--kafka-nodes applies to the embedded broker only (--kafka cluster runs %d nodes)", parts.DefaultClusterNodes)
	}
	if k.nodes < 0 || k.nodes > layout.MaxKafkaNodes {
		return parts.KafkaOptions{}, nil, fmt.Errorf("--kafka-nodes %d: must be from 1 to %d", k.nodes, layout.MaxKafkaNodes)
	}
	switch platform {
	case parts.KafkaEmbedded:
		if k.nodes > 1 {
			return parts.KafkaOptions{Nodes: k.nodes}, nil, nil
		}
		return parts.KafkaOptions{}, nil, nil
	case parts.KafkaExternal:
		o, err := k.external(ctx)
		return o, nil, err
	case parts.KafkaCluster:
	default:
		return parts.KafkaOptions{}, nil, fmt.Errorf("--kafka %q: must be embedded or cluster (or give --kafka-bootstrap for your own cluster)", k.platform)
	}
	exe, _ := os.Executable()
	home, err := apachekafka.FindHome(k.home, g.getenv("KAFKA_HOME"), exe)
	if err != nil {
		return parts.KafkaOptions{}, nil, err
	}
	java, err := apachekafka.FindJava(g.getenv("JAVA_HOME"))
	if err != nil {
		return parts.KafkaOptions{}, nil, err
	}
	heap := k.heap
	if heap == "" {
		heap = "256m"
	}
	if !strings.HasSuffix(strings.ToLower(heap), "m") && !strings.HasSuffix(strings.ToLower(heap), "g") {
		return parts.KafkaOptions{}, nil, fmt.Errorf("--kafka-heap %q: want a size such as 256m or 1g", heap)
	}
	notes = append(notes, fmt.Sprintf("Apache Kafka %s from %s, Java %d (%s).", home.Version, home.Dir, java.Major, java.Path), clusterCPUNote(runtime.NumCPU()))
	return parts.KafkaOptions{Platform: parts.KafkaCluster, Nodes: parts.DefaultClusterNodes, Home: home.Dir, Java: java.Path, Heap: heap}, notes, nil
}

// clusterCPUNote tells the user that three JVMs share the machine's cpus
// with the lab: on two cores an experiment's load keeps them nearly full,
// and a run short of CPU can fail its control for that reason alone.
func clusterCPUNote(cpus int) string {
	return fmt.Sprintf("The three Kafka nodes share this machine's %d CPUs with both variants and the load generator: 'lab chaos run' prints the machine's CPU share on every progress line, and says so when a control fails.", cpus)
}

// BootstrapTimeout bounds asking an external cluster for its brokers.
const BootstrapTimeout = 10 * time.Second

// external checks --kafka-bootstrap: every address well-formed, a broker
// answers, at most layout.MaxKafkaNodes brokers (one edge proxy per client
// per broker), and the lab's topics are created or already right.
func (k *kafkaFlags) external(ctx context.Context) (parts.KafkaOptions, error) {
	var boot []string
	for _, a := range strings.Split(k.bootstrap, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" {
			return parts.KafkaOptions{}, fmt.Errorf("--kafka-bootstrap %q: want host:port[,host:port...]", k.bootstrap)
		}
		boot = append(boot, a)
	}
	if len(boot) == 0 {
		return parts.KafkaOptions{}, fmt.Errorf("--kafka-bootstrap %q: want host:port[,host:port...]", k.bootstrap)
	}
	brokers, err := apachekafka.Brokers(ctx, boot, BootstrapTimeout)
	if err != nil {
		return parts.KafkaOptions{}, fmt.Errorf("--kafka-bootstrap: %w", err)
	}
	if len(brokers) > layout.MaxKafkaNodes {
		return parts.KafkaOptions{}, fmt.Errorf("--kafka-bootstrap: the cluster has %d brokers; the lab proxies at most %d (one edge proxy per client per broker)", len(brokers), layout.MaxKafkaNodes)
	}
	o := parts.KafkaOptions{Platform: parts.KafkaExternal, Bootstrap: boot}
	for _, b := range brokers {
		o.Brokers = append(o.Brokers, parts.KafkaNode{Name: parts.KafkaNodeName(int32(b.ID)), ID: int32(b.ID), Advertised: net.JoinHostPort(b.Host, fmt.Sprint(b.Port))})
	}
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(boot...), Timeout: 30 * time.Second}
	if _, err := apachekafka.EnsureTopics(tctx, c, model.Topics, apachekafka.PolicyFor(len(brokers))); err != nil {
		return parts.KafkaOptions{}, fmt.Errorf("--kafka-bootstrap %s: %w", k.bootstrap, err)
	}
	return o, nil
}

// clusterID is the lab's KRaft cluster id, made once per state directory.
func clusterID(dir layout.Dir) (string, error) {
	path := dir.Path("data", "kafka-cluster-id")
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	// Like Kafka's Uuid.randomUuid: never starting with '-', which tools
	// would read as an option.
	var id string
	for id == "" || id[0] == '-' {
		var raw [16]byte
		_, _ = rand.Read(raw[:])
		id = base64.RawURLEncoding.EncodeToString(raw[:])
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	return id, os.WriteFile(path, []byte(id+"\n"), 0o644)
}

// platformMark records which Kafka a state directory's services have
// consumed from: their stored offsets belong to that Kafka's topics.
func platformMark(o parts.KafkaOptions) string {
	switch o.PlatformName() {
	case parts.KafkaCluster:
		return parts.KafkaCluster + " " + o.ClusterID
	case parts.KafkaExternal:
		return parts.KafkaExternal + " " + strings.Join(o.Bootstrap, ",")
	}
	return parts.KafkaEmbedded
}

// checkPlatform refuses to start a state directory on another Kafka than
// the one its services' state came from (their offsets would point into
// other topics), and records the platform for the next start.
func checkPlatform(dir layout.Dir, o parts.KafkaOptions) error {
	path := dir.Path("data", "kafka-platform")
	want := platformMark(o)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if got := strings.TrimSpace(string(b)); got != want {
			return fmt.Errorf("the lab in %s last ran on Kafka %q, not %q: its services' state (offsets, views) belongs to that Kafka. Use another --dir, or start over with 'rm -rf %s'", dir, got, want, dir)
		}
		return nil
	case errors.Is(err, os.ErrNotExist):
		if _, serr := os.Stat(dir.Data("ratings-stream")); serr == nil && o.PlatformName() != parts.KafkaEmbedded {
			// A directory from before platforms were recorded ran embedded.
			return fmt.Errorf("the lab in %s last ran on the embedded broker: its services' state belongs to it. Use another --dir, or start over with 'rm -rf %s'", dir, dir)
		}
	default:
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(want+"\n"), 0o644)
}

// kafkaPortUses are ports the cluster's nodes listen on beside their
// client listeners (which are the instances' addresses).
func kafkaPortUses(p layout.Ports, o parts.Options) map[string]string {
	out := map[string]string{}
	if o.Kafka.PlatformName() == parts.KafkaCluster {
		for i := range o.Kafka.NodeCount() {
			out[p.KafkaController(i)] = parts.KafkaNodeName(int32(i+1)) + " controller"
		}
	}
	if o.Kafka.PlatformName() == parts.KafkaEmbedded {
		for _, n := range o.KafkaNodes(p)[1:] {
			out[n.Advertised] = n.Name + " (embedded broker node)"
		}
	}
	return out
}

// kafkaURLs are `lab up`'s lines about the lab's Kafka.
func kafkaURLs(p layout.Ports, o parts.Options) []string {
	boot := strings.Join(o.KafkaBootstrap(p), ",")
	switch o.Kafka.PlatformName() {
	case parts.KafkaCluster:
		return []string{fmt.Sprintf("  Kafka cluster   %s   (%d Apache Kafka nodes; kcat -b %s -L)", boot, o.Kafka.NodeCount(), boot)}
	case parts.KafkaExternal:
		return []string{fmt.Sprintf("  Kafka (yours)   %s   (kcat -b %s -L)", boot, boot)}
	}
	return []string{fmt.Sprintf("  Kafka broker    %s          (kcat -b %s -L)", boot, boot)}
}
