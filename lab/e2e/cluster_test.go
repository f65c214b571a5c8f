package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ratingslab/lab/experiments"
	"github.com/ratingslab/lab/lab/audit"
	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/lab/supervisor"
)

// shortened writes a copy of a shipped experiment with every duration of
// its schedule (load duration, at, for, recovery, drain) scaled by f,
// so the suites can run the shipped files in a fraction of their time.
func shortened(t *testing.T, name string, f float64) string {
	t.Helper()
	data, err := fs.ReadFile(experiments.FS(), name+".yaml")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^(\s*-?\s*(?:duration|at|for|recovery|drain):\s*)(\d+)s\s*$`)
	out := re.ReplaceAllStringFunc(string(data), func(line string) string {
		m := re.FindStringSubmatch(line)
		n, _ := strconv.Atoi(m[2])
		return m[1] + strconv.Itoa(int(float64(n)*f+0.5)) + "s"
	})
	file := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// The shipped experiments that fault the log variant run on the stream
// variant, shortened to half their length, on the embedded broker (the
// cluster runs them, and its own, in TestCluster). Whatever a fault does to
// availability, no acknowledged rating may be lost or counted twice, and
// every fault is applied as planned.
func TestShippedLogExperiments(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	t.Parallel()
	if labtest.OnCluster() {
		t.Skip("on the cluster, TestCluster runs these on its own lab")
	}
	// Each on a lab of its own, side by side: TestCluster runs a series on
	// one lab.
	for _, name := range []string{"ratings-crash", "poison-event", "broker-outage"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			l := labtest.Start(t, "--no-prometheus")
			runLogExperiment(t, l, name, shortened(t, name, 0.5))
		})
	}
}

// runShippedLogExperiments runs shipped experiments, shortened, one after
// the other on one lab, each from a healthy lab. Availability during a
// fault is what the experiment shows; what is checked here is the log
// variant's promise: once the lab has recovered, every acknowledged rating
// is counted, none twice, in ratings-stream's store and in webserver-stream's
// view, its projection read through the API (`lab audit JOURNAL` after the
// run, retried while the stream variant catches up). The run's own verdict
// may be taken before the variant caught up; it is logged, not asserted.
//
// The view is checked like the store since ratings-stream re-emits at once
// after an emission of rated-movies gave up (a leader failover on the real
// cluster): before, the view stayed behind until the next rating arrived,
// and the next run's baseline read it stale (seen: 5 missing, 27 twice).
func runShippedLogExperiments(t *testing.T, l *labtest.Lab, names ...string) {
	for _, name := range names {
		t.Run(name, func(t *testing.T) { runLogExperiment(t, l, name, shortened(t, name, 0.5)) })
	}
}

// runLogExperiment runs one experiment file on the stream variant and checks
// it as runShippedLogExperiments says; it returns the run's journal.
func runLogExperiment(t *testing.T, l *labtest.Lab, name, file string) journal.Journal {
	t.Helper()
	waitAllHealthy(t, l)
	out, _ := l.Run("chaos", "run", file, "--variants", "stream", "--quiet")
	m := regexp.MustCompile(`Journal: (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("lab chaos run %s: no journal:\n%s", name, out)
	}
	j, err := journal.Read(m[1])
	if err != nil {
		t.Fatal(err)
	}
	if j.Error != "" {
		t.Fatalf("run error: %s\n%s", j.Error, out)
	}
	for _, f := range j.Faults {
		if f.Error != "" || f.InjectedAt.IsZero() {
			t.Errorf("fault %s/%s not applied: %q", f.ID, f.Variant, f.Error)
		}
		if name == "leader-failover" && !strings.Contains(f.Outcome, "killed broker-") {
			t.Errorf("leader failover's outcome %q; want the broker it killed named", f.Outcome)
		}
	}
	waitAllHealthy(t, l)
	var last string
	defer func() {
		if t.Failed() {
			t.Logf("lab chaos run:\n%s\nlast audit: %s", out, last)
		}
	}()
	labtest.Eventually(t, 90*time.Second, "every acknowledged rating counted once in the store and the view, after recovery", func() error {
		var results []audit.Result
		// The JSON comes first; lab audit exits non-zero (and says so
		// after it) when anything, phantoms included, is unexplained.
		aout, _ := l.Run("audit", m[1], "--json")
		if err := json.NewDecoder(strings.NewReader(aout)).Decode(&results); err != nil {
			return fmt.Errorf("lab audit: %v: %s", err, aout)
		}
		last = aout
		var bad []string
		seen := map[string]bool{}
		for _, r := range results {
			if r.Variant != "stream" {
				continue
			}
			seen[r.Source] = true
			if !r.Checked || r.Lost != 0 || r.Duplicates != 0 {
				bad = append(bad, fmt.Sprintf("%s: checked %v, %d lost, %d duplicates (%d phantoms)", r.Source, r.Checked, r.Lost, r.Duplicates, r.Phantoms))
			}
		}
		for _, source := range []string{audit.SourceAPI, audit.SourceStore} {
			if !seen[source] {
				bad = append(bad, "no audit of the stream variant's "+source)
			}
		}
		if len(bad) > 0 {
			return errors.New(strings.Join(bad, "; "))
		}
		return nil
	})
	return j
}

// assertOwnNodeEdges checks that no Kafka client of the lab dials a broker
// node directly: each has connections through its own per-node proxies
// only. It returns the lab's state.
func assertOwnNodeEdges(t *testing.T, l *labtest.Lab) supervisor.State {
	t.Helper()
	st, err := supervisor.ReadState(l.Dir)
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[int]bool{}
	for _, a := range st.Options.KafkaBootstrap(l.Ports) {
		nodes[portOf(t, a)] = true
	}
	for _, client := range []string{"webserver-stream", "ratings-stream", "movies-connect"} {
		own := map[int]bool{}
		for _, e := range parts.BrokerEdges(st.Options, client) {
			own[portOf(t, e.Listen(l.Ports))] = true
		}
		ports := remotePorts(t, l.Part(client).PID)
		viaOwn := 0
		for port, n := range ports {
			if nodes[port] {
				t.Errorf("%s has %d connection(s) straight to node port %d", client, n, port)
			}
			if own[port] {
				viaOwn += n
			}
		}
		if viaOwn == 0 {
			t.Errorf("%s: no connection through its node proxies %v (connections by port: %v)", client, own, ports)
		}
	}
	return st
}

func waitAllHealthy(t *testing.T, l *labtest.Lab) {
	t.Helper()
	for _, p := range l.Status(t) {
		if p.Health != supervisor.HealthOK {
			l.WaitPart(p.Name, supervisor.HealthOK, 2*time.Minute)
		}
	}
}

// The real cluster (LAB_E2E_KAFKA=cluster only), on one lab: three healthy
// nodes, the lab's topics replicated 3 ways with min.insync.replicas 2 (as
// Kafka's own kafka-topics sees them), every Kafka client on its own proxy
// per node, broker faults (one client cut from one broker, a paused broker,
// a restarted one), then the shipped experiments: the cluster's own (leader
// failover, broker minority/majority outages) and the log-variant ones,
// then a second lab on the same cluster through --kafka-bootstrap.
func TestCluster(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	t.Parallel()
	if !labtest.OnCluster() {
		t.Skip("needs the real cluster: make test-kafka (LAB_E2E_KAFKA=cluster)")
	}
	l := labtest.Start(t, "--no-prometheus")
	t.Run("faults", func(t *testing.T) { clusterFaults(t, l) })
	// broker-outage (all three nodes killed) is left out here: a whole
	// cluster restarting takes longer than its half-length schedule.
	// broker-minority-outage last: two brokers down leave the slowest recovery.
	runShippedLogExperiments(t, l, "leader-failover", "ratings-crash", "poison-event", "broker-minority-outage")
	t.Run("external", func(t *testing.T) { externalCluster(t, l) })
	t.Run("port in use", clusterPortInUse)
}

// A cluster node's controller port taken by another program: lab up names
// it and starts nothing.
func clusterPortInUse(t *testing.T) {
	l := labtest.New(t)
	ln, err := net.Listen("tcp", l.Ports.KafkaController(1))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	out, err := l.Run("up", "--no-prometheus", "--kafka", "cluster")
	if err == nil || !strings.Contains(out, l.Ports.KafkaController(1)) || !strings.Contains(out, "broker-2 controller") {
		t.Fatalf("up with broker-2's controller port taken: %v\n%s", err, out)
	}
	if _, err := os.Stat(l.Dir.Path("lab.json")); err == nil {
		t.Error("a refused up left a lab state behind")
	}
}

// A second lab on the first one's cluster (--kafka-bootstrap): refused
// while a topic has other settings than the lab needs (nothing written),
// then up with no broker parts and an edge per client per broker. Last:
// the two labs' processors share the consumer group.
func externalCluster(t *testing.T, cluster *labtest.Lab) {
	boot := cluster.Bootstrap()
	ext := labtest.New(t)
	t.Cleanup(func() { ext.Run("down") })
	cluster.KafkaTool("kafka-configs", "--alter", "--entity-type", "topics", "--entity-name", "ratings-dlq", "--add-config", "min.insync.replicas=1")
	out, err := ext.Run("up", "--no-prometheus", "--kafka-bootstrap", boot)
	if err == nil || !strings.Contains(out, "topic ratings-dlq has min.insync.replicas=1, the lab wants 2") {
		t.Fatalf("up on a cluster with a misconfigured topic: %v\n%s", err, out)
	}
	if _, serr := os.Stat(ext.Dir.LegacyDB()); serr == nil {
		t.Error("a refused up created the legacy DB")
	}
	cluster.KafkaTool("kafka-configs", "--alter", "--entity-type", "topics", "--entity-name", "ratings-dlq", "--add-config", "min.insync.replicas=2")
	out, err = ext.Run("up", "--no-prometheus", "--kafka-bootstrap", boot)
	for try := 0; err != nil && strings.Contains(out, "is already in use") && try < 3; try++ {
		// Another lab on this machine took a port of the free block meanwhile.
		ext.Ports.Base = labtest.FreePortBase(t)
		out, err = ext.Run("up", "--no-prometheus", "--kafka-bootstrap", boot)
	}
	if err != nil {
		t.Fatalf("up --kafka-bootstrap %s: %v\n%s", boot, err, out)
	}
	status := ext.MustRun("status")
	for _, want := range []string{"Kafka: your cluster (3 brokers", "webserver-stream->broker-1", "ratings-stream->broker-3"} {
		if !strings.Contains(status, want) {
			t.Errorf("status of the external lab lacks %q:\n%s", want, status)
		}
	}
	for _, p := range ext.Status(t) {
		if strings.HasPrefix(p.Name, "broker") {
			t.Errorf("an external lab runs no broker parts, got %s", p.Name)
		}
	}
	if code, _ := postRating(t, "http://"+ext.Ports.WebserverStream(), 3, 8, "external-1"); code != http.StatusAccepted {
		t.Errorf("POST to the external lab's stream variant: %d", code)
	}
}

// clusterFaults: no acknowledged rating is lost through broker faults.
func clusterFaults(t *testing.T, l *labtest.Lab) {
	for _, n := range []string{"broker-1", "broker-2", "broker-3"} {
		if p := l.Part(n); p.Health != supervisor.HealthOK || p.PID == 0 || p.Addr == "" {
			t.Fatalf("%s: %+v", n, p)
		}
	}
	topics := l.KafkaTool("kafka-topics", "--describe", "--topic", "ratings")
	if !strings.Contains(topics, "ReplicationFactor: 3") || !strings.Contains(topics, "min.insync.replicas=2") {
		t.Fatalf("kafka-topics --describe ratings: want RF 3 and min.insync.replicas=2:\n%s", topics)
	}
	if out := l.MustRun("status"); !strings.Contains(out, "webserver-stream->broker-3") {
		t.Errorf("lab status should list the per-node edges:\n%s", out)
	}

	// No Kafka client dials a node directly, only its own proxies.
	assertOwnNodeEdges(t, l)

	base := "http://" + l.Ports.WebserverStream()
	acked := map[int64]int64{}
	unsure := map[int64]int64{}
	post := func(round string) (ok, failed int) {
		type res struct {
			movie int64
			code  int
			why   string
		}
		ch := make(chan res)
		for m := int64(1); m <= 24; m++ {
			go func() {
				body := map[string]any{"movie_id": m, "rating": 7, "user_id": 42, "request_id": fmt.Sprintf("%s-%d", round, m)}
				var answer map[string]any
				code, err := labtest.HTTPJSON(http.MethodPost, base+"/api/ratings", body, &answer)
				why := fmt.Sprint(answer["error"])
				if err != nil {
					why = err.Error()
				}
				ch <- res{m, code, why}
			}()
		}
		var failures []string
		for range 24 {
			r := <-ch
			switch {
			case r.code == http.StatusAccepted:
				acked[r.movie]++
				ok++
			case r.code >= 500 || r.code == 0:
				unsure[r.movie]++ // may still be written (503/504)
				failed++
				failures = append(failures, fmt.Sprintf("movie %d: %d %s", r.movie, r.code, r.why))
			default:
				t.Errorf("%s: movie %d answered %d", round, r.movie, r.code)
			}
		}
		// Logged for the failure that is not expected (after the faults
		// healed), and to show what the faults did in the others.
		t.Logf("%s: %d accepted, %d failed %q", round, ok, failed, failures)
		return ok, failed
	}
	before := map[int64]int64{}
	for m := int64(1); m <= 24; m++ {
		before[m] = streamCount(t, base, m)
	}

	// One client cut from one broker: webserver-stream cannot reach
	// broker-1, so writes to the partitions broker-1 leads fail, the others
	// go through.
	out := l.MustRun("chaos", "inject", "partition", "--target", "webserver-stream->broker-1", "--for", "15s")
	id := regexp.MustCompile(`f-\d+`).FindString(out)
	ok, failed := post("cut")
	if ok == 0 || failed == 0 {
		t.Errorf("with webserver-stream cut from broker-1: %d accepted, %d failed; want both (broker-1 leads some partitions, not all)", ok, failed)
	}
	l.MustRun("chaos", "heal", id)

	// A paused broker, then a restarted one: the cluster fails over and
	// each comes back into the ISR (healthy).
	l.MustRun("chaos", "inject", "pause", "--target", "broker-2", "--for", "12s")
	if p := l.Part("broker-2"); p.Health != supervisor.HealthPaused {
		t.Errorf("paused broker-2 is %s", p.Health)
	}
	post("paused")
	l.WaitPart("broker-2", supervisor.HealthOK, 90*time.Second)
	l.MustRun("chaos", "inject", "restart", "--target", "broker-3")
	l.WaitPart("broker-3", supervisor.HealthOK, 90*time.Second)
	// Healthy brokers take every rating again: a whole round accepted
	// within a minute (each round is bounded by the client's 10 s). Not
	// necessarily at once: in one CI run on 2 loaded cores, 20 of the first
	// round's 24 failed right after broker-3 was back in every ISR (the
	// answers were not logged then; they are now). The likely cause is the
	// restarted node's cold JVM: with acks=all each write waits for it to
	// fetch as a follower, within webserver-stream's 2 s produce timeout.
	// Every round's answers count in the exact check below.
	healed := time.Now()
	for round := 1; ; round++ {
		ok, _ := post(fmt.Sprintf("after-%d", round))
		if ok == 24 {
			t.Logf("every rating accepted again %s after the brokers were healthy (round %d)", time.Since(healed).Round(time.Millisecond), round)
			break
		}
		if time.Since(healed) > time.Minute {
			t.Fatalf("a minute after the faults healed, %d of 24 ratings accepted; leaders:\n%s", ok, l.KafkaTool("kafka-topics", "--describe", "--topic", "ratings"))
		}
	}

	labtest.Eventually(t, 60*time.Second, "every acknowledged rating counted once", func() error {
		for m := int64(1); m <= 24; m++ {
			got := streamCount(t, base, m) - before[m]
			if got < acked[m] || got > acked[m]+unsure[m] {
				return fmt.Errorf("movie %d: %d counted, %d acknowledged, %d unsure", m, got, acked[m], unsure[m])
			}
		}
		return nil
	})
}
