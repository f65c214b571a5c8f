package apachekafka

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Node is one KRaft node of a lab's cluster: broker and controller in one
// JVM (combined mode), with a static controller quorum.
type Node struct {
	ID         int32
	Listen     string // client listener, also the advertised address
	Controller string // KRaft controller listener
	Voters     string // controller.quorum.voters: "1@127.0.0.1:9093,2@..."
	Data       string // the node's folder: config, log dir
	ClusterID  string
	// Replication is the cluster's replication factor for Kafka's internal
	// topics (consumer offsets, transactions), MinISR their min.insync.replicas
	// and the default of every topic.
	Replication, MinISR int
}

// LogDir is where the node keeps its partitions and metadata log.
func (n Node) LogDir() string { return filepath.Join(n.Data, "logs") }

// Properties is the node's server.properties. Everything not set here is
// Kafka's default; the lab's choices and why:
//   - no topic auto-creation (the lab creates its topics with their configs);
//   - internal topics replicated like the lab's (RF, min ISR), with 12
//     partitions instead of 50 so a cluster starts quickly on a laptop;
//   - the log cleaner's dedupe buffer is 8 MiB instead of 128 MiB, which
//     would not fit the nodes' small heaps;
//   - no initial rebalance delay, so a lone consumer starts at once.
func (n Node) Properties() string {
	lines := []string{
		"process.roles=broker,controller",
		fmt.Sprintf("node.id=%d", n.ID),
		"controller.quorum.voters=" + n.Voters,
		fmt.Sprintf("listeners=PLAINTEXT://%s,CONTROLLER://%s", n.Listen, n.Controller),
		"advertised.listeners=PLAINTEXT://" + n.Listen,
		"controller.listener.names=CONTROLLER",
		"inter.broker.listener.name=PLAINTEXT",
		"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"log.dirs=" + n.LogDir(),
		"auto.create.topics.enable=false",
		fmt.Sprintf("default.replication.factor=%d", n.Replication),
		fmt.Sprintf("min.insync.replicas=%d", n.MinISR),
		fmt.Sprintf("offsets.topic.replication.factor=%d", n.Replication),
		"offsets.topic.num.partitions=12",
		fmt.Sprintf("transaction.state.log.replication.factor=%d", n.Replication),
		fmt.Sprintf("transaction.state.log.min.isr=%d", n.MinISR),
		"transaction.state.log.num.partitions=12",
		"share.coordinator.state.topic.replication.factor=" + strconv.Itoa(n.Replication),
		"share.coordinator.state.topic.min.isr=" + strconv.Itoa(n.MinISR),
		"log.cleaner.dedupe.buffer.size=8388608",
		"group.initial.rebalance.delay.ms=0",
	}
	return strings.Join(lines, "\n") + "\n"
}

// log4j2 sends Kafka's log to stdout (the part's log file), without the
// configuration dumps every client and server prints at start.
const log4j2 = `status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
logger.appinfo.name = org.apache.kafka.common.utils.AppInfoParser
logger.appinfo.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
`

// Runner is `lab serve kafka-node`: it writes the node's configuration,
// formats its storage on first start, then replaces itself with the JVM
// (exec), so the supervisor's kill, pause and stop reach Kafka itself.
type Runner struct {
	node          Node
	id            int
	home, java    string
	heap          string
	replication   int
	minISR        int
	formatTimeout time.Duration
}

func (r *Runner) Flags(fs *flag.FlagSet) {
	fs.IntVar(&r.id, "node-id", 1, "KRaft node `id` (1..)")
	fs.StringVar(&r.node.Listen, "listen", "127.0.0.1:9092", "client listener `address` (loopback; also the advertised address)")
	fs.StringVar(&r.node.Controller, "controller", "127.0.0.1:9093", "KRaft controller listener `address` (loopback)")
	fs.StringVar(&r.node.Voters, "voters", "", "the static controller quorum, `id@host:port,...` (controller.quorum.voters)")
	fs.StringVar(&r.node.Data, "data", "", "the node's `dir`ectory: server.properties, log4j2.properties, logs/")
	fs.StringVar(&r.node.ClusterID, "cluster-id", "", "KRaft cluster `id` the storage is formatted with (22 characters, base64 UUID)")
	fs.StringVar(&r.home, "kafka-home", "", "Apache Kafka distribution `dir` (libs/*.jar)")
	fs.StringVar(&r.java, "java", "java", "java `executable` (17 or newer)")
	fs.StringVar(&r.heap, "heap", "256m", "JVM heap `size` (-Xms and -Xmx)")
	fs.IntVar(&r.replication, "replication", 3, "replication `factor` of Kafka's internal topics")
	fs.IntVar(&r.minISR, "min-isr", 2, "min.insync.replicas default and of the internal topics")
	fs.DurationVar(&r.formatTimeout, "format-timeout", 90*time.Second, "bound on formatting the storage on first start")
}

var (
	clusterIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)
	heapPattern      = regexp.MustCompile(`^[1-9][0-9]*[mMgG]$`)
)

func (r *Runner) validate() error {
	if r.id < 1 {
		return fmt.Errorf("--node-id %d: must be 1 or more", r.id)
	}
	r.node.ID = int32(r.id)
	for flagName, addr := range map[string]string{"--listen": r.node.Listen, "--controller": r.node.Controller} {
		host, _, err := net.SplitHostPort(addr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("%s %q: want a loopback host:port", flagName, addr)
		}
	}
	if !strings.Contains(r.node.Voters, fmt.Sprintf("%d@", r.id)) {
		return fmt.Errorf("--voters %q: must name this node (%d@%s)", r.node.Voters, r.id, r.node.Controller)
	}
	if r.node.Data == "" {
		return errors.New("--data: the node needs a directory")
	}
	if !clusterIDPattern.MatchString(r.node.ClusterID) {
		return fmt.Errorf("--cluster-id %q: want a 22-character base64 UUID", r.node.ClusterID)
	}
	if !heapPattern.MatchString(r.heap) {
		return fmt.Errorf("--heap %q: want a size such as 256m or 1g", r.heap)
	}
	if r.replication < 1 || r.minISR < 1 || r.minISR > r.replication {
		return fmt.Errorf("--replication %d --min-isr %d: want 1 <= min-isr <= replication", r.replication, r.minISR)
	}
	r.node.Replication, r.node.MinISR = r.replication, r.minISR
	return nil
}

func (r *Runner) Run(ctx context.Context, log *slog.Logger) error {
	if err := r.validate(); err != nil {
		return err
	}
	home, err := CheckHome(r.home, "--kafka-home")
	if err != nil {
		return err
	}
	java, err := CheckJava(r.java)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(r.node.LogDir(), 0o755); err != nil {
		return fmt.Errorf("--data %s: %w", r.node.Data, err)
	}
	props := filepath.Join(r.node.Data, "server.properties")
	logConf := filepath.Join(r.node.Data, "log4j2.properties")
	if err := os.WriteFile(props, []byte(r.node.Properties()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(logConf, []byte(log4j2), 0o644); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(r.node.LogDir(), "meta.properties")); errors.Is(err, os.ErrNotExist) {
		log.Info("formatting storage", "dir", r.node.LogDir(), "cluster_id", r.node.ClusterID)
		fctx, cancel := context.WithTimeout(ctx, r.formatTimeout)
		out, err := r.command(fctx, home, java, logConf, StorageClass, "format", "--cluster-id="+r.node.ClusterID, "--config", props).CombinedOutput()
		cancel()
		if err != nil {
			return fmt.Errorf("format storage in %s: %v\n%s", r.node.LogDir(), err, out)
		}
	}
	cmd := r.command(ctx, home, java, logConf, ServerClass, props)
	log.Info("starting Apache Kafka", "version", home.Version, "node_id", r.id, "listen", r.node.Listen, "controller", r.node.Controller, "java", java.Path, "heap", r.heap)
	// Become the JVM: same pid, so SIGKILL/SIGSTOP/SIGTERM from the
	// supervisor reach Kafka, and Kafka's own shutdown hook runs on SIGTERM.
	return syscall.Exec(cmd.Path, cmd.Args, os.Environ())
}

// command is `java <options> -cp libs/* <class> args...`.
func (r *Runner) command(ctx context.Context, home Home, java Java, logConf, class string, args ...string) *exec.Cmd {
	jvm := []string{
		"-Xms" + r.heap, "-Xmx" + r.heap,
		"-XX:+UseSerialGC", // small heaps on a 2-core machine: no parallel GC threads
		"-XX:+ExitOnOutOfMemoryError",
		"-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile=" + logConf,
		"-cp", home.Libs(),
		class,
	}
	return exec.CommandContext(ctx, java.Path, append(jvm, args...)...)
}
