package compose

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/dashboards"
	"github.com/ratingslab/lab/lab/apachekafka"
	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/lab/prom"
	"github.com/ratingslab/lab/lab/prom/promtest"
	"github.com/ratingslab/lab/services/lib/servetest"
)

// knownGaps are dashboard problems the compose stack has for a stated
// reason; any other problem fails. Apicurio (compose's registry) does not
// export the embedded registry's lab_schema_registry_decisions_total, so
// the "Registry decisions" query of the contracts row has no series in
// compose (the refusals the parts see, in the same panel, do).
var knownGaps = []string{"lab_schema_registry_decisions_total"}

// The compose stack, run natively: every lab-image service with its exact
// command, environment and user, healthy by its own compose healthcheck;
// ratings flow end to end through both variants; every scrape target in
// compose/prometheus.yml answers, with the metric families the dashboards
// query, and every dashboard query returns data.
func TestComposeStackRunsNatively(t *testing.T) {
	if os.Getenv("LAB_E2E") == "0" || testing.Short() {
		t.Skip("end-to-end test: set LAB_E2E=1 and drop -short to run")
	}
	_, ok := prom.Find()
	servetest.Need(t, ok, "prometheus", prom.InstallHint)
	jar, err := parts.ApicurioJar(parts.ApicurioHome())
	servetest.Need(t, err == nil, "apicurio", fmt.Sprint(err))
	java, err := exec.LookPath("java")
	servetest.Need(t, err == nil, "java", "Java 17 runs Apicurio Registry")

	// A short load: the smoke scenario (10 s) instead of steady (60 s). The
	// log in Avro, so the registry and its edges carry every event (in
	// JSON, the default, the registry is not used at all).
	p := loadWith(t, []string{"LAB_SCENARIO=smoke", "LAB_FORMAT=avro"}, "load")
	began := time.Now()
	elapsed := func(what string) { t.Logf("%s after %v", what, time.Since(began).Round(100*time.Millisecond)) }
	dockerfile := readText(t, "Dockerfile")
	s := newNativeStack(t, p, dockerfile)

	// make test-kafka runs this again on real Apache Kafka (LAB_E2E_KAFKA=cluster).
	onKafka := labtest.OnCluster()
	if onKafka {
		s.startKafka(java)
	} else {
		s.startBroker()
	}
	// Apicurio (a JVM) starts while toxiproxy is built and started.
	registryReady := s.startApicurio(java, jar, onKafka)
	s.startToxiproxy()
	registryReady()
	elapsed("broker, toxiproxy and registry ready")
	var lab []string
	for _, n := range labServices(p) {
		if n != "lab-load" {
			lab = append(lab, n)
		}
	}
	s.up(lab, 90*time.Second)
	eventually(t, 60*time.Second, "every lab service healthy by its compose healthcheck", func() error {
		var errs []string
		for _, n := range lab {
			if err := s.healthy(n); err != nil {
				errs = append(errs, err.Error())
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("%s", strings.Join(errs, "\n"))
		}
		return nil
	})

	elapsed("every lab service healthy")
	t.Run("ratings flow through both variants", func(t *testing.T) { s.checkRatingsFlow(t) })

	promURL := promtest.Start(t, s.prometheusConfig(readText(t, "prometheus.yml")))
	// A fault as a compose user injects one: a toxic through Toxiproxy's API.
	toxic := `{"name":"compose-native-latency","type":"latency","stream":"downstream","toxicity":1,"attributes":{"latency":20}}`
	if err := postJSON(s.url("toxiproxy", 8474)+"/proxies/ratings-rpc-%3Emovies-rpc/toxics", toxic); err != nil {
		t.Fatalf("inject a toxic through the toxiproxy API: %v", err)
	}
	s.start("lab-load", s.labCommand("lab-load"))
	eventually(t, 90*time.Second, "lab-load (smoke) to finish", func() error {
		gone, err := s.exitErr("lab-load")
		if !gone {
			return fmt.Errorf("still running")
		}
		if err != nil {
			t.Fatalf("lab-load failed: %v\n%s", err, s.logTail("lab-load"))
		}
		return nil
	})

	elapsed("lab-load done")
	t.Run("every scrape target answers with the dashboards' metric families", func(t *testing.T) {
		checkTargets(t, promURL, readText(t, "prometheus.yml"))
	})
	t.Run("the registry keeps the schemas on the Kafka log", func(t *testing.T) {
		if !onKafka {
			t.Skip("Apicurio's KafkaSQL storage runs only on real Kafka (see startApicurio)")
		}
		// The Avro schemas the clients registered are records of Apicurio's journal topic.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		conn, err := kafka.DialLeader(ctx, "tcp", s.broker, "kafkasql-journal", 0)
		if err != nil {
			t.Fatalf("Apicurio's journal topic: %v", err)
		}
		defer conn.Close()
		if end, err := conn.ReadLastOffset(); err != nil || end == 0 {
			t.Errorf("kafkasql-journal ends at %d (%v), want the registrations in it", end, err)
		}
	})
	t.Run("every dashboard query returns data", func(t *testing.T) {
		eventually(t, 60*time.Second, "every dashboard query to return data", func() error {
			return liveProblems(promURL)
		})
	})

	// As natively (lab/supervisor/edgefollow.go), via the "lab" service's
	// follower (lab/composeedges): a proxy in front of a stopped container
	// refuses, is no fault, and opens once the container listens again.
	t.Run("the edge in front of a stopped container refuses", func(t *testing.T) {
		const edge = "ratings-rpc->movies-rpc"
		var proxy struct{ Listen string }
		if code, err := labtest.HTTPJSON(http.MethodGet, s.url("toxiproxy", 8474)+"/proxies/"+url.PathEscape(edge), nil, &proxy); err != nil || code != http.StatusOK {
			t.Fatalf("the proxy %s on Toxiproxy's API: HTTP %d, %v", edge, code, err)
		}
		_, port, err := net.SplitHostPort(proxy.Listen)
		if err != nil {
			t.Fatalf("the proxy's listen address %q: %v", proxy.Listen, err)
		}
		listen := net.JoinHostPort(s.addrs["toxiproxy"], port)
		s.stop("movies-rpc")
		eventually(t, 10*time.Second, "the edge to refuse once movies-rpc stopped", func() error {
			c, err := net.DialTimeout("tcp", listen, time.Second)
			if err == nil {
				c.Close()
				return fmt.Errorf("%s (%s) accepts a connection with nothing behind it", edge, listen)
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				return fmt.Errorf("dial %s: %v, want connection refused", listen, err)
			}
			return nil
		})
		metrics, err := httpText(s.url("lab", 7700) + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(metrics, `lab_fault_active{fault="partition",target="`+edge+`"} 1`) {
			t.Errorf("the closed edge is reported as a partition fault")
		}
		s.start("movies-rpc", s.labCommand("movies-rpc"))
		eventually(t, 60*time.Second, "movies-rpc healthy and its edge open again", func() error {
			if err := s.healthy("movies-rpc"); err != nil {
				return err
			}
			c, err := net.DialTimeout("tcp", listen, time.Second)
			if err != nil {
				return err
			}
			return c.Close()
		})
	})

	// The same checks bite: each of these mutations must fail them.
	t.Run("a missing required flag fails", func(t *testing.T) {
		svc := p.Services["movies-connect"]
		svc.Command = withoutFlag(svc.Command, "--data")
		s.startMutant(t, "movies-connect-no-data", svc, s.img)
		eventually(t, 30*time.Second, "movies-connect without --data to be unhealthy, naming the flag", func() error {
			err := s.healthy("movies-connect-no-data")
			if err == nil {
				return fmt.Errorf("healthy without --data")
			}
			if !strings.Contains(err.Error(), "--data") {
				return fmt.Errorf("unhealthy, but not naming --data: %v", err)
			}
			return nil
		})
	})
	t.Run("an unwritable volume fails", func(t *testing.T) {
		// The image as it was before this fix: only /data/legacy made for nonroot.
		old := regexp.MustCompile(`(?s)RUN mkdir -p (?:[^\n\\]|\\\n)+`).ReplaceAllString(dockerfile, "RUN mkdir -p /out/data/legacy")
		img := readImage(t, old)
		svc := p.Services["ratings-rpc"]
		svc.Volumes = slices.Clone(svc.Volumes)
		svc.Volumes[0].Source = "ratings-rpc-as-before"
		s.startMutant(t, "ratings-rpc-root-volume", svc, img)
		eventually(t, 30*time.Second, "ratings-rpc on a root-owned volume to fail, saying why", func() error {
			err := s.healthy("ratings-rpc-root-volume")
			if err == nil {
				return fmt.Errorf("healthy on a volume its user cannot write")
			}
			// SQLite says "unable to open database file" (SQLITE_CANTOPEN) for a directory it cannot write.
			if !strings.Contains(err.Error(), "permission denied") && !strings.Contains(err.Error(), "unable to open database file") {
				return fmt.Errorf("unhealthy, but not for the volume: %v", err)
			}
			return nil
		})
	})
	t.Run("a scrape gap fails", func(t *testing.T) {
		cfg := withoutJob(t, readText(t, "prometheus.yml"), prom.SupervisorPart)
		gapURL := promtest.Start(t, s.prometheusConfig(cfg))
		eventually(t, 30*time.Second, "the scrape gap to be seen", func() error {
			err := liveProblems(gapURL)
			if err == nil || !strings.Contains(err.Error(), "lab_part_up") {
				return fmt.Errorf("without the supervisor's job the dashboards check says %v, want lab_part_up missing", err)
			}
			return nil
		})
	})
	// Kafka's log lost under the stores (what `down`/`up` did before the
	// log had a volume): they must stop and say so, not skip new records.
	t.Run("a reset Kafka log is reported by the stores", func(t *testing.T) {
		if onKafka {
			t.Skip("the embedded pass wipes the broker's log; on real Kafka this pass checks kafka-init.sh and Apicurio's KafkaSQL storage")
		}
		s.stop("kafka")
		if err := os.RemoveAll(filepath.Join(s.root, "volumes", "kafka")); err != nil {
			t.Fatal(err)
		}
		s.startBroker()
		// kafkaio.LogResetError (the view's tables), ratings-stream's own
		// check of its state, and the connector's of its position.
		says := map[string]string{"webserver-stream": "log reset on", "ratings-stream": "the broker's log was reset",
			"movies-connect": "log reset on movies"}
		for n := range says {
			s.stop(n)
			s.start(n, s.labCommand(n))
		}
		eventually(t, 60*time.Second, "the log variant's stores to report the reset log", func() error {
			for n, want := range says {
				err := s.healthy(n)
				if err == nil || !strings.Contains(err.Error(), want) {
					return fmt.Errorf("%s on an empty log: %v, want unhealthy with %q", n, err, want)
				}
			}
			return nil
		})
		for n := range says {
			t.Logf("%s: %v", n, s.healthy(n))
		}
	})
}

func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func postJSON(url, body string) error {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return fmt.Errorf("%s: HTTP %d: %s", url, resp.StatusCode, b.String())
	}
	return nil
}

// startBroker stands in for the kafka service: the embedded broker (which
// creates the lab's topics, as kafka-init does), its data in the kafka
// volume's directory.
func (s *nativeStack) startBroker() {
	s.t.Helper()
	data := filepath.Join(s.root, "volumes", "kafka")
	s.start("kafka", command{path: s.bin, args: []string{"serve", "broker", "--listen", s.broker, "--data", data}, dir: s.root})
	eventually(s.t, 30*time.Second, "the embedded broker to listen", func() error {
		if gone, err := s.exitErr("kafka"); gone {
			s.t.Fatalf("broker exited: %v\n%s", err, s.logTail("kafka"))
		}
		c, err := net.DialTimeout("tcp", s.broker, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// startToxiproxy runs Toxiproxy v2.12.0 (the compose image's version, from
// the Go module) with the compose command and compose/toxiproxy.json.
func (s *nativeStack) startToxiproxy() {
	s.t.Helper()
	svc := s.p.Services["toxiproxy"]
	out := filepath.Join(s.root, "bin", "toxiproxy-server")
	build := exec.Command("go", "build", "-o", out, "github.com/Shopify/toxiproxy/v2/cmd/server")
	if b, err := build.CombinedOutput(); err != nil {
		s.t.Fatalf("build toxiproxy: %v\n%s", err, b)
	}
	c := command{path: out, dir: s.root}
	for _, a := range svc.Command {
		a = s.rewrite("toxiproxy", a)
		for _, v := range svc.Volumes {
			if v.Type == types.VolumeTypeBind {
				a = mapPaths(strings.TrimPrefix(a, "-config="), v.Target, s.mounted("toxiproxy", v.Source))
				if !strings.HasPrefix(a, "-") {
					a = "-config=" + a
				}
			}
		}
		c.args = append(c.args, a)
	}
	s.start("toxiproxy", c)
	eventually(s.t, 30*time.Second, "toxiproxy's API", func() error {
		if gone, err := s.exitErr("toxiproxy"); gone {
			s.t.Fatalf("toxiproxy exited: %v\n%s", err, s.logTail("toxiproxy"))
		}
		return httpOK(s.url("toxiproxy", 8474) + "/version")
	})
}

// mounted is a bind-mounted config file with its service names rewritten.
func (s *nativeStack) mounted(service, source string) string {
	s.t.Helper()
	body, err := os.ReadFile(source)
	if err != nil {
		s.t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(body), "\n") {
		lines = append(lines, s.rewrite(service, l))
	}
	dst := filepath.Join(s.root, "mounts", service, filepath.Base(source))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(dst, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		s.t.Fatal(err)
	}
	return dst
}

// startKafka stands in for the kafka service on real Apache Kafka (the jars
// of `make kafka`): one KRaft node configured as the compose one (the
// compose CLUSTER_ID, replication 1, min ISR 1), its log in the kafka
// volume's directory; then compose/kafka-init.sh itself runs, with
// /opt/kafka/bin's two tools as shims onto the same jars, and must succeed
// (kafka-init's service_completed_successfully).
func (s *nativeStack) startKafka(java string) {
	s.t.Helper()
	home, err := apachekafka.FindHome("", os.Getenv("KAFKA_HOME"), "")
	if err != nil {
		s.t.Fatal(err)
	}
	k := s.p.Services["kafka"]
	controller := freeLoopback(s.t)
	s.start("kafka", command{path: s.bin, dir: s.root, args: []string{"serve", "kafka-node", "--node-id", env(k, "KAFKA_NODE_ID"),
		"--listen", s.broker, "--controller", controller, "--voters", env(k, "KAFKA_NODE_ID") + "@" + controller,
		"--data", filepath.Join(s.root, "volumes", "kafka"), "--cluster-id", env(k, "CLUSTER_ID"),
		"--kafka-home", home.Dir, "--java", java, "--replication", env(k, "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"),
		"--min-isr", env(k, "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR")}})
	if err := apachekafka.WaitBrokers(context.Background(), []string{s.broker}, 1, 90*time.Second); err != nil {
		s.t.Fatalf("kafka node: %v\n%s", err, s.logTail("kafka"))
	}

	shims := filepath.Join(s.root, "opt-kafka-bin")
	if err := os.MkdirAll(shims, 0o755); err != nil {
		s.t.Fatal(err)
	}
	for _, tool := range []string{"kafka-topics", "kafka-configs"} {
		shim := fmt.Sprintf("#!/bin/sh\nexec %s -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -cp '%s' %s \"$@\"\n", java, home.Libs(), apachekafka.Tools[tool])
		if err := os.WriteFile(filepath.Join(shims, tool+".sh"), []byte(shim), 0o755); err != nil {
			s.t.Fatal(err)
		}
	}
	init := s.p.Services["kafka-init"]
	script := strings.ReplaceAll(readText(s.t, "kafka-init.sh"), "/opt/kafka/bin/", shims+"/")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range init.Environment {
		if v != nil {
			cmd.Env = append(cmd.Env, k+"="+s.rewrite("kafka-init", *v))
		}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("kafka-init.sh on real Kafka: %v\n%s", err, out)
	}
}

// startApicurio runs the Apicurio Registry jar with the schema-registry
// service's environment. On the embedded broker, one deviation: its
// KafkaSQL storage cannot run there (kfake answers DescribeConfigs with
// config source -1, which Kafka's Java admin client rejects: "id should be
// positive"), so it keeps its schemas in memory. On real Kafka the compose
// environment is used as it is.
// It returns the wait for the registry to be ready.
func (s *nativeStack) startApicurio(java, jar string, exact bool) (ready func()) {
	s.t.Helper()
	svc := s.p.Services["schema-registry"]
	c := command{path: java, dir: s.root, env: []string{"PATH=" + os.Getenv("PATH"), "HOME=" + s.root}}
	port := "8080"
	for k, v := range svc.Environment {
		if v == nil {
			continue
		}
		if k == "QUARKUS_HTTP_PORT" {
			port = *v
		}
		c.env = append(c.env, k+"="+s.rewrite("schema-registry", *v))
	}
	c.env = append(c.env, "QUARKUS_HTTP_HOST="+s.addrs["schema-registry"])
	if !exact {
		c.env = append(c.env, "APICURIO_STORAGE_KIND=sql")
	}
	c.args = []string{"-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-jar", jar}
	s.start("schema-registry", c)
	return func() {
		eventually(s.t, 90*time.Second, "Apicurio Registry ready", func() error {
			if gone, err := s.exitErr("schema-registry"); gone {
				s.t.Fatalf("apicurio exited: %v\n%s", err, s.logTail("schema-registry"))
			}
			return httpOK("http://" + net.JoinHostPort(s.addrs["schema-registry"], port) + "/health/ready")
		})
	}
}

// up starts the named lab-image services in depends_on order, waiting for
// each dependency's condition as Docker Compose does. kafka-init's
// completion is the embedded broker's start (it creates the topics).
func (s *nativeStack) up(names []string, bound time.Duration) {
	s.t.Helper()
	started := map[string]bool{"kafka": true, "kafka-init": true, "toxiproxy": true, "schema-registry": true}
	healthy := map[string]bool{"kafka": true, "schema-registry": true}
	pending := slices.Clone(names)
	deadline := time.Now().Add(bound)
	for len(pending) > 0 {
		var waiting []string
		var why []string
		for _, n := range pending {
			ready := true
			for dep, d := range s.p.Services[n].DependsOn {
				switch d.Condition {
				case types.ServiceConditionStarted, types.ServiceConditionCompletedSuccessfully:
					ready = ready && started[dep]
				case types.ServiceConditionHealthy:
					if !healthy[dep] && started[dep] && s.healthy(dep) == nil {
						healthy[dep] = true
					}
					ready = ready && healthy[dep]
				default:
					s.t.Fatalf("%s depends on %s with condition %q, which this harness does not model", n, dep, d.Condition)
				}
				if !ready {
					why = append(why, n+" waits for "+dep+" ("+d.Condition+")")
					break
				}
			}
			if ready {
				s.start(n, s.labCommand(n))
				started[n] = true
			} else {
				waiting = append(waiting, n)
			}
		}
		if len(waiting) == len(pending) {
			if time.Now().After(deadline) {
				s.t.Fatalf("compose up stuck after %v: %s", bound, strings.Join(why, "; "))
			}
			time.Sleep(250 * time.Millisecond)
		}
		pending = waiting
	}
}

// startMutant starts a changed copy of a lab service under its own name
// and address, beside the stack.
func (s *nativeStack) startMutant(t *testing.T, name string, svc types.ServiceConfig, img image) {
	t.Helper()
	s.mu.Lock()
	s.addrs[name] = fmt.Sprintf("127.0.77.%d", 200+len(s.mutants))
	s.mutants[name] = svc
	s.mu.Unlock()
	s.start(name, s.commandFor(name, svc, img))
	t.Cleanup(func() { s.stop(name) })
}

func withoutFlag(cmd []string, flag string) []string {
	var out []string
	for i := 0; i < len(cmd); i++ {
		if cmd[i] == flag {
			i++ // and its value
			continue
		}
		out = append(out, cmd[i])
	}
	return out
}

// withoutJob drops one job from a prometheus.yml as prom.Render writes it.
func withoutJob(t *testing.T, cfg, job string) string {
	t.Helper()
	blocks := strings.Split(cfg, "\n  - job_name: ")
	var kept []string
	for i, b := range blocks {
		if i > 0 && strings.HasPrefix(b, job+"\n") {
			continue
		}
		kept = append(kept, b)
	}
	if len(kept) == len(blocks) {
		t.Fatalf("prometheus.yml has no job %q", job)
	}
	return strings.Join(kept, "\n  - job_name: ")
}

// prometheusConfig is compose/prometheus.yml with the service names
// rewritten to their addresses here.
func (s *nativeStack) prometheusConfig(cfg string) []byte {
	var lines []string
	for _, l := range strings.Split(cfg, "\n") {
		lines = append(lines, s.rewrite("prometheus", l))
	}
	return []byte(strings.Join(lines, "\n"))
}

// checkRatingsFlow posts one rating to each webserver and waits until its
// movie's count shows it: rpc synchronously, stream through the log.
func (s *nativeStack) checkRatingsFlow(t *testing.T) {
	const movie = 7
	for _, v := range []struct {
		service string
		port    int
		status  int
	}{{"webserver-rpc", 7710, http.StatusCreated}, {"webserver-stream", 7720, http.StatusAccepted}} {
		base := s.url(v.service, v.port)
		before := movieCount(t, base, movie)
		body := fmt.Sprintf(`{"request_id":"compose-native-%s-%d","movie_id":%d,"rating":8}`, v.service, time.Now().UnixNano(), movie)
		resp, err := http.Post(base+"/api/ratings", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatalf("%s: %v", v.service, err)
		}
		resp.Body.Close()
		if resp.StatusCode != v.status {
			t.Fatalf("%s POST /api/ratings: HTTP %d, want %d", v.service, resp.StatusCode, v.status)
		}
		eventually(t, 30*time.Second, v.service+" to count the rating", func() error {
			if n := movieCount(t, base, movie); n != before+1 {
				return fmt.Errorf("movie %d count %d, want %d", movie, n, before+1)
			}
			return nil
		})
	}
}

func movieCount(t *testing.T, base string, movie int) int64 {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("%s/api/movies/%d", base, movie))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Count int64 `json:"count"`
	}
	if err := jsonBody(resp, &m); err != nil {
		t.Fatalf("GET %s/api/movies/%d: %v", base, movie, err)
	}
	return m.Count
}

// liveProblems is dashboards.CheckLive for both variants, less knownGaps.
func liveProblems(promURL string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := dashboards.CheckLive(ctx, promURL, []string{"rpc", "stream"})
	if err == nil {
		return nil
	}
	// One problem per unindented line, with its indented continuation (the query).
	lines := strings.Split(err.Error(), "\n")
	var problems []string
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, " ") && len(problems) > 0 {
			problems[len(problems)-1] += "\n" + l
			continue
		}
		problems = append(problems, l)
	}
	var kept []string
	for _, pr := range problems {
		if !slices.ContainsFunc(knownGaps, func(g string) bool { return strings.Contains(pr, g) }) {
			kept = append(kept, pr)
		}
	}
	if len(kept) == 0 {
		return nil
	}
	return fmt.Errorf("%s\n%s", lines[0], strings.Join(kept, "\n"))
}

// checkTargets wants every job of prometheus.yml scraped successfully at
// least once, each exposing at least one lab_* family a dashboard queries
// (so a target scraping the wrong endpoint, or a part missing its metrics,
// is caught even where another part's series would fill the panel).
func checkTargets(t *testing.T, promURL, cfg string) {
	t.Helper()
	queried := map[string]bool{}
	ident := regexp.MustCompile(`\blab_[a-z0-9_]+`)
	for _, q := range dashboards.Queries() {
		for _, m := range ident.FindAllString(q.Expr+" "+strings.Join(q.Requires, " "), -1) {
			queried[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_count"), "_sum")] = true
		}
	}
	jobs := regexp.MustCompile(`(?m)^  - job_name: (\S+)$`).FindAllStringSubmatch(cfg, -1)
	if len(jobs) == 0 {
		t.Fatal("prometheus.yml has no jobs")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, j := range jobs {
		job := j[1]
		up, err := prom.Query(ctx, promURL, fmt.Sprintf(`max_over_time(up{job=%q}[10m])`, job))
		if err != nil || up.Empty() || up.Series[0].Points[0].Value != 1 {
			t.Errorf("job %s: never scraped successfully (%v %+v)", job, err, up.Series)
			continue
		}
		// Every family the job exposed in the window (the load generator
		// has exited by now).
		names, err := prom.LabelValues(ctx, promURL, "__name__", fmt.Sprintf(`{job=%q}`, job), time.Now().Add(-10*time.Minute), time.Now())
		if err != nil {
			t.Errorf("job %s: %v", job, err)
			continue
		}
		var has, all []string
		for _, name := range names {
			if !strings.HasPrefix(name, "lab_") {
				continue
			}
			all = append(all, name)
			if queried[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count"), "_sum")] {
				has = append(has, name)
			}
		}
		if len(has) == 0 {
			sort.Strings(all)
			t.Errorf("job %s: none of the metric families the dashboards query (it exposes %v)", job, all)
		}
	}
}
