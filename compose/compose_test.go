// Package compose holds the Docker Compose stack (docker-compose.yml and the
// files it mounts). There is no Go code to run here: this package's test
// loads the stack with compose-go — the library Docker Compose itself uses —
// and checks it against the lab's own tables, so the stack cannot drift from
// the native lab unnoticed.
package compose

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/lab/prom"
	"github.com/ratingslab/lab/lab/prom/promtest"
	"github.com/ratingslab/lab/services/lib/kafkaio/embedded"
)

var update = flag.Bool("update", false, "rewrite prometheus.yml from docker-compose.yml")

// The parts of docs/architecture.md, each one a compose service.
var labParts = map[string]string{
	"movies-rpc": "rpc", "ratings-rpc": "rpc", "webserver-rpc": "rpc",
	"movies-connect": "stream", "ratings-stream": "stream", "webserver-stream": "stream",
}

// ports is the native port table, which the stack reuses inside its network.
var ports = layout.Ports{Base: layout.DefaultPortBase}

// load loads docker-compose.yml with the file's defaults only: the test
// must not depend on the caller's environment.
func load(t *testing.T, profiles ...string) *types.Project {
	t.Helper()
	return loadWith(t, nil, profiles...)
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("no service %q", name)
	}
	return s
}

func TestStackHasTheLabPartsAndTheRealInfrastructure(t *testing.T) {
	p := load(t, "load")
	var names []string
	for n := range p.Services {
		names = append(names, n)
	}
	slices.Sort(names)
	want := []string{"grafana", "k6", "kafka", "kafka-init", "lab", "lab-load", "movies-connect", "movies-rpc", "prometheus",
		"ratings-rpc", "ratings-stream", "schema-registry", "toxiproxy", "webserver-rpc", "webserver-stream"}
	if !slices.Equal(names, want) {
		t.Errorf("services %v, want %v", names, want)
	}

	images := map[string]string{
		"kafka": "apache/kafka:", "kafka-init": "apache/kafka:", "toxiproxy": "ghcr.io/shopify/toxiproxy:2.12.0",
		"prometheus": "prom/prometheus:v3.", "k6": "grafana/k6:",
		"schema-registry": "apicurio/apicurio-registry:3.0.9",
	}
	for name, prefix := range images {
		img := service(t, p, name).Image
		if !strings.HasPrefix(img, prefix) || strings.HasSuffix(img, ":latest") || !strings.Contains(img, ":") {
			t.Errorf("%s image %q, want a pinned %s... tag", name, img, prefix)
		}
	}
	if service(t, p, "kafka").Image != service(t, p, "kafka-init").Image {
		t.Error("kafka-init should use the broker's image (its kafka-topics.sh matches the broker)")
	}

	// k6 runs only with --profile load.
	if _, ok := load(t).Services["k6"]; ok {
		t.Error("k6 starts without --profile load")
	}
	if !slices.Equal(service(t, p, "k6").Profiles, []string{"load"}) {
		t.Errorf("k6 profiles %v, want [load]", service(t, p, "k6").Profiles)
	}
}

func TestLabServicesRunTheLabImageBuiltFromThisRepository(t *testing.T) {
	p := load(t)
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for name, variant := range labParts {
		s := service(t, p, name)
		if s.Build == nil || s.Build.Context != repo || s.Build.Dockerfile != "compose/Dockerfile" || s.Build.Target != "lab" {
			t.Errorf("%s build %+v, want context %s, compose/Dockerfile, target lab", name, s.Build, repo)
		}
		if s.Image != "ratings-lab/lab:dev" {
			t.Errorf("%s image %q, want the one lab image", name, s.Image)
		}
		if len(s.Command) < 2 || s.Command[0] != "serve" || s.Command[1] != name {
			t.Errorf("%s command %v, want `serve %s ...`", name, s.Command, name)
		}
		if s.Labels["org.ratingslab.part"] != name || s.Labels["org.ratingslab.variant"] != variant {
			t.Errorf("%s labels %v, want part=%s variant=%s", name, s.Labels, name, variant)
		}
	}
	dockerfile, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(dockerfile), "./lab/cmd/lab") || !strings.Contains(string(dockerfile), "distroless") {
		t.Error("Dockerfile should build ./lab/cmd/lab into a distroless image")
	}
	if _, err := os.Stat(filepath.Join(repo, "lab", "cmd", "lab")); err != nil {
		t.Errorf("the Dockerfile builds ./lab/cmd/lab: %v", err)
	}
}

// Every flag a lab service is started with exists on its part, parsed as
// `lab serve` parses it.
func TestLabServiceFlagsParseAsLabServeParsesThem(t *testing.T) {
	p := load(t)
	for name := range labParts {
		t.Run(name, func(t *testing.T) {
			part, err := parts.Lookup(name)
			if err != nil {
				t.Skipf("part %s is not registered in lab/parts yet, its flags cannot be checked: %v", name, err)
			}
			fs := flag.NewFlagSet("lab serve "+name, flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			part.NewRunner().Flags(fs)
			args := service(t, p, name).Command[2:]
			if err := fs.Parse(args); err != nil {
				t.Errorf("lab serve %s %v: %v", name, args, err)
			}
			if fs.NArg() > 0 {
				t.Errorf("lab serve %s: unexpected argument %q", name, fs.Arg(0))
			}
		})
	}
}

// flagValue is the value of --name in a command line.
func flagValue(cmd []string, name string) string {
	for i, a := range cmd {
		if a == "--"+name && i+1 < len(cmd) {
			return cmd[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

// listenPort is the port a lab service listens on, from --listen.
func listenPort(t *testing.T, s types.ServiceConfig) string {
	t.Helper()
	host, port, err := net.SplitHostPort(flagValue(s.Command, "listen"))
	if err != nil || host != "0.0.0.0" {
		t.Fatalf("%s: --listen %q, want 0.0.0.0:<port> (reachable in the stack's network)", s.Name, flagValue(s.Command, "listen"))
	}
	return port
}

func TestLabServicesListenOnTheNativePortTable(t *testing.T) {
	p := load(t)
	want := map[string]string{
		"webserver-rpc": ports.WebserverRPC(), "ratings-rpc": ports.RatingsRPC(), "movies-rpc": ports.MoviesRPC(),
		"webserver-stream": ports.WebserverStream(), "ratings-stream": ports.RatingsStream(0), "movies-connect": ports.MoviesConnect(),
	}
	for name, addr := range want {
		_, port, _ := net.SplitHostPort(addr)
		if got := listenPort(t, service(t, p, name)); got != port {
			t.Errorf("%s listens on %s, the port table says %s", name, got, port)
		}
	}
}

// toxiproxyConfig is compose/toxiproxy.json.
type toxiproxyConfig []struct {
	Name, Listen, Upstream string
	Enabled                bool
}

func TestEveryEdgeHasItsProxyAndItsClientUsesIt(t *testing.T) {
	p := load(t)
	body, err := os.ReadFile("toxiproxy.json")
	if err != nil {
		t.Fatal(err)
	}
	var proxies toxiproxyConfig
	if err := json.Unmarshal(body, &proxies); err != nil {
		t.Fatalf("toxiproxy.json: %v", err)
	}
	byName := map[string]int{}
	for i, px := range proxies {
		byName[px.Name] = i
	}
	edges := parts.Edges(1) // compose runs one ratings-stream replica
	if len(proxies) != len(edges) {
		t.Errorf("toxiproxy.json has %d proxies, the lab has %d edges", len(proxies), len(edges))
	}
	for _, e := range edges {
		i, ok := byName[e.Name]
		if !ok {
			t.Errorf("edge %s has no proxy in toxiproxy.json", e.Name)
			continue
		}
		px := proxies[i]
		_, port, _ := net.SplitHostPort(e.Listen(ports))
		if px.Listen != "0.0.0.0:"+port || !px.Enabled {
			t.Errorf("proxy %s listens on %s (enabled %v), want 0.0.0.0:%s like the native edge", e.Name, px.Listen, px.Enabled, port)
		}
		upstream := "kafka:9092"
		switch e.To {
		case "broker":
		case parts.RegistryPart:
			// Apicurio Registry, on the native registry port.
			reg := service(t, p, e.To)
			_, regPort, _ := net.SplitHostPort(ports.Registry())
			if env(reg, "QUARKUS_HTTP_PORT") != regPort {
				t.Errorf("schema-registry listens on %q, the port table says %s", env(reg, "QUARKUS_HTTP_PORT"), regPort)
			}
			upstream = e.To + ":" + env(reg, "QUARKUS_HTTP_PORT")
			if want := "http://toxiproxy:" + port + parts.ApicurioPath; flagValue(service(t, p, e.From).Command, "registry") != want {
				t.Errorf("%s --registry %q, want Apicurio's Confluent API through its edge proxy, %s", e.From, flagValue(service(t, p, e.From).Command, "registry"), want)
			}
		default:
			upstream = e.To + ":" + listenPort(t, service(t, p, e.To))
		}
		if px.Upstream != upstream {
			t.Errorf("proxy %s forwards to %s, want %s", e.Name, px.Upstream, upstream)
		}
		// The client reaches the edge's target only through the proxy.
		client := service(t, p, e.From)
		cmd := strings.Join(client.Command, " ")
		if !strings.Contains(cmd, "toxiproxy:"+port) {
			t.Errorf("%s does not use its edge proxy toxiproxy:%s: %s", e.From, port, cmd)
		}
		if e.To == "broker" && flagValue(client.Command, "broker-route") != "kafka:9092=toxiproxy:"+port {
			t.Errorf("%s --broker-route %q, want kafka:9092=toxiproxy:%s (advertised address through the proxy)", e.From, flagValue(client.Command, "broker-route"), port)
		}
	}
	if _, ok := service(t, p, "toxiproxy").DependsOn["kafka"]; ok {
		t.Error("toxiproxy need not wait for kafka: proxies connect upstream per connection")
	}
}

// kafka-init.sh creates the topics the embedded broker creates.
func TestKafkaInitCreatesTheEmbeddedBrokersTopics(t *testing.T) {
	p := load(t)
	body, err := os.ReadFile("kafka-init.sh")
	if err != nil {
		t.Fatal(err)
	}
	create := regexp.MustCompile(`(?m)^create --topic (\S+) --partitions (\d+)((?: --config \S+)*)$`)
	got := map[string]string{}
	for _, m := range create.FindAllStringSubmatch(string(body), -1) {
		cfg := strings.Fields(strings.ReplaceAll(m[3], "--config", ""))
		slices.Sort(cfg)
		got[m[1]] = m[2] + " " + strings.Join(cfg, ",")
	}
	want := map[string]string{}
	for _, topic := range embedded.Topics {
		var cfg []string
		for k, v := range topic.Configs {
			cfg = append(cfg, k+"="+v)
		}
		slices.Sort(cfg)
		want[topic.Name] = fmt.Sprint(topic.Partitions) + " " + strings.Join(cfg, ",")
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("kafka-init.sh creates %v, lab/embedded.Topics are %v", got, want)
	}
	init := service(t, p, "kafka-init")
	if init.DependsOn["kafka"].Condition != types.ServiceConditionHealthy {
		t.Errorf("kafka-init depends on %+v, want kafka healthy", init.DependsOn)
	}
	for name, variant := range labParts {
		if variant != "stream" {
			continue
		}
		if c := service(t, p, name).DependsOn["kafka-init"].Condition; c != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s starts on kafka-init %q, want completed successfully (kafka-go group readers hang on missing topics)", name, c)
		}
	}
	if service(t, p, "kafka").HealthCheck == nil {
		t.Error("kafka has no healthcheck; kafka-init cannot wait for it")
	}
}

// Every bind-mounted path exists in the repository, and every named volume
// is declared.
func TestMountsExist(t *testing.T) {
	p := load(t, "load")
	repo, _ := filepath.Abs("..")
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			switch v.Type {
			case types.VolumeTypeBind:
				if !strings.HasPrefix(v.Source, repo+string(filepath.Separator)) {
					t.Errorf("%s mounts %s from outside the repository", name, v.Source)
				}
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s mounts %s: %v", name, v.Source, err)
				}
				if !v.ReadOnly {
					t.Errorf("%s mounts %s writable; the stack must not write into the repository", name, v.Source)
				}
			case types.VolumeTypeVolume:
				if _, ok := p.Volumes[v.Source]; !ok {
					t.Errorf("%s uses undeclared volume %s", name, v.Source)
				}
			}
		}
	}
}

func TestPublishedPortsAreLoopbackAndUnique(t *testing.T) {
	p := load(t, "load")
	seen := map[string]string{}
	for name, s := range p.Services {
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes %s on %q, want 127.0.0.1 only", name, port.Published, port.HostIP)
			}
			if other, dup := seen[port.Published]; dup {
				t.Errorf("%s and %s both publish %s", name, other, port.Published)
			}
			seen[port.Published] = name
		}
	}
	// The published addresses are the native ones, so URLs in the README hold in both modes.
	published := map[string]string{
		"webserver-rpc": ports.WebserverRPC(), "webserver-stream": ports.WebserverStream(),
		"prometheus": ports.Prometheus(), "grafana": ports.Grafana(), "toxiproxy": ports.Toxiproxy(),
	}
	for name, addr := range published {
		_, port, _ := net.SplitHostPort(addr)
		if seen[port] != name {
			t.Errorf("%s should be published on 127.0.0.1:%s (the native port table), %s has it", name, port, seen[port])
		}
	}
}

// composeTargets are the scrape targets of the stack, as natively: the
// supervisor's metrics (the lab service: lab compose watch) and the load
// generator (the lab-load service, profile load), both with honor_labels,
// and every lab service at its admin listener, labelled like the native
// ones.
func composeTargets(t *testing.T, p *types.Project) []prom.Target {
	lab := service(t, p, "lab")
	host, port, err := net.SplitHostPort(flagValue(lab.Command, "listen"))
	if err != nil || host != "0.0.0.0" || port != strconv.Itoa(ports.Base) {
		t.Fatalf("lab (the supervisor's metrics) --listen %q, want 0.0.0.0:%d (the native control port)", flagValue(lab.Command, "listen"), ports.Base)
	}
	supervisor := prom.LabTargets(ports)[0]
	supervisor.Addr = "lab:" + port
	targets := []prom.Target{supervisor}
	for _, name := range []string{"webserver-rpc", "ratings-rpc", "movies-rpc", "webserver-stream", "ratings-stream", "movies-connect"} {
		s := service(t, p, name)
		targets = append(targets, prom.Target{
			Part:    s.Labels["org.ratingslab.part"],
			Variant: s.Labels["org.ratingslab.variant"],
			Addr:    name + ":" + adminPort(t, s),
		})
	}
	pl := load(t, "load")
	lg := service(t, pl, "lab-load")
	_, loadPort, err := net.SplitHostPort(flagValue(lg.Command, "metrics-listen"))
	if err != nil {
		t.Fatalf("lab-load --metrics-listen: %v", err)
	}
	native := prom.LabTargets(ports)[1] // the load generator's target natively
	native.Addr = "lab-load:" + loadPort
	return append(targets, native)
}

// adminPort is the port of a lab service's admin listener: its public port
// + 64 as natively, bound in the stack's network, allowed for the stack's
// subnet and the service's own name.
func adminPort(t *testing.T, s types.ServiceConfig) string {
	t.Helper()
	host, port, err := net.SplitHostPort(flagValue(s.Command, "admin-listen"))
	pub, _ := strconv.Atoi(listenPort(t, s))
	if err != nil || host != "0.0.0.0" || port != strconv.Itoa(pub+64) {
		t.Fatalf("%s: --admin-listen %q, want 0.0.0.0:%d (the public port + 64, reachable by Prometheus)", s.Name, flagValue(s.Command, "admin-listen"), pub+64)
	}
	allow := strings.Split(flagValue(s.Command, "admin-allow"), ",")
	if !slices.Contains(allow, s.Name) || !slices.Contains(allow, stackSubnet) {
		t.Fatalf("%s: --admin-allow %q, want the stack's subnet %s and its own name", s.Name, flagValue(s.Command, "admin-allow"), stackSubnet)
	}
	return port
}

// stackSubnet is the compose network's fixed subnet (docker-compose.yml).
const stackSubnet = "172.28.0.0/16"

func TestPrometheusScrapesEveryLabServiceWithPartAndVariantLabels(t *testing.T) {
	p := load(t)
	want, err := prom.Render(composeTargets(t, p))
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("prometheus.yml", want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("prometheus.yml differs from the scrape config of docker-compose.yml's lab services: run `go test ./compose -update`\n got:\n%s\nwant:\n%s", got, want)
	}
	// The real Prometheus loads it (the targets' names only resolve inside the stack).
	promtest.Start(t, got)

	prometheus := service(t, p, "prometheus")
	if !hasMount(prometheus, "prometheus.yml", "/etc/prometheus/prometheus.yml") ||
		flagValue(prometheus.Command, "config.file") != "/etc/prometheus/prometheus.yml" {
		t.Errorf("prometheus does not run compose/prometheus.yml: %v %v", prometheus.Command, prometheus.Volumes)
	}
}

func hasMount(s types.ServiceConfig, sourceSuffix, target string) bool {
	for _, v := range s.Volumes {
		if strings.HasSuffix(v.Source, sourceSuffix) && v.Target == target {
			return true
		}
	}
	return false
}

func env(s types.ServiceConfig, name string) string {
	if v, ok := s.Environment[name]; ok && v != nil {
		return *v
	}
	return ""
}

func TestGrafanaIsProvisionedFromTheDashboardsFolder(t *testing.T) {
	p := load(t)
	g := service(t, p, "grafana")
	// The lab's provisioning folders only: a mount over the whole of
	// /etc/grafana/provisioning hides the image's alerting/ and plugins/.
	for _, sub := range []string{"datasources", "dashboards"} {
		if !hasMount(g, filepath.Join("dashboards", "provisioning", sub), "/etc/grafana/provisioning/"+sub) {
			t.Errorf("grafana does not mount dashboards/provisioning/%s at /etc/grafana/provisioning/%s: %+v", sub, sub, g.Volumes)
		}
	}
	for _, v := range g.Volumes {
		if v.Target == "/etc/grafana/provisioning" {
			t.Errorf("grafana mounts over the whole of /etc/grafana/provisioning, hiding the image's alerting/ and plugins/: %+v", v)
		}
	}
	dir := env(g, prom.EnvDashboardsDir)
	if dir == "" || !hasMount(g, filepath.Join("dashboards", "json"), dir) {
		t.Errorf("grafana's %s=%q is not where dashboards/json is mounted: %+v", prom.EnvDashboardsDir, dir, g.Volumes)
	}
	if home := env(g, "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"); home != dir+"/overview.json" {
		t.Errorf("home dashboard %q, want the overview", home)
	}
	if _, err := os.Stat(filepath.Join("..", "dashboards", "json", "overview.json")); err != nil {
		t.Errorf("the home dashboard is missing: %v", err)
	}
	promURL := env(g, prom.EnvPrometheusURL)
	prometheus := service(t, p, "prometheus")
	if !strings.HasPrefix(promURL, "http://prometheus:") || !strings.HasSuffix(promURL, ":9090") {
		t.Errorf("grafana's %s=%q, want the prometheus service on its container port", prom.EnvPrometheusURL, promURL)
	}
	if len(prometheus.Ports) != 1 || prometheus.Ports[0].Target != 9090 {
		t.Errorf("prometheus ports %+v, want container port 9090", prometheus.Ports)
	}
	// Every provisioning file's variables are set (a data source's may be
	// set empty on purpose: the plugin's control URL).
	files, _ := filepath.Glob(filepath.Join("..", "dashboards", "provisioning", "*", "*.yaml"))
	if len(files) < 2 {
		t.Fatalf("provisioning files %v", files)
	}
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, ref := range regexp.MustCompile(`\$\{(\w+)\}`).FindAllStringSubmatch(string(body), -1) {
			if _, set := g.Environment[ref[1]]; !set {
				t.Errorf("provisioning %s reads ${%s}, which the grafana service does not set", f, ref[1])
			}
		}
	}
}

func TestK6DrivesBothWebserversAndWritesToPrometheus(t *testing.T) {
	p := load(t, "load")
	k6 := service(t, p, "k6")
	for name, variable := range map[string]string{"webserver-rpc": "RPC_URL", "webserver-stream": "STREAM_URL"} {
		want := "http://" + name + ":" + listenPort(t, service(t, p, name))
		if env(k6, variable) != want {
			t.Errorf("k6 %s=%q, want %s", variable, env(k6, variable), want)
		}
	}
	if !hasMount(k6, "loadtests", "/loadtests") {
		t.Errorf("k6 does not mount loadtests/: %+v", k6.Volumes)
	}
	if !strings.HasPrefix(env(k6, "K6_PROMETHEUS_RW_SERVER_URL"), "http://prometheus:9090/") ||
		!slices.Contains(service(t, p, "prometheus").Command, "--web.enable-remote-write-receiver") {
		t.Error("k6 should remote-write to prometheus, which must accept it")
	}
	// handleSummary writes into SUMMARY_DIR; k6 creates no folders and
	// /loadtests is mounted read-only, so it must be elsewhere.
	if dir := env(k6, "SUMMARY_DIR"); dir == "" || strings.HasPrefix(dir, "/loadtests") {
		t.Errorf("k6 SUMMARY_DIR=%q, want a writable folder outside the read-only /loadtests", dir)
	}
	// One series per endpoint, not per URL (movie id): no url system tag, the name tag kept.
	tags := strings.Split(env(k6, "K6_SYSTEM_TAGS"), ",")
	if slices.Contains(tags, "url") || !slices.Contains(tags, "name") || !slices.Contains(tags, "status") {
		t.Errorf("k6 K6_SYSTEM_TAGS=%q, want k6's defaults without url (name and status kept)", env(k6, "K6_SYSTEM_TAGS"))
	}
	scenario := strings.TrimPrefix(env(k6, "SCENARIO"), "/loadtests/")
	if _, err := os.Stat(filepath.Join("..", "loadtests", scenario)); err != nil {
		t.Errorf("k6 default scenario: %v", err)
	}
	if got := strconv.Quote(k6.Command[len(k6.Command)-1]); !strings.HasPrefix(got, `"/loadtests/`) {
		t.Errorf("k6 runs %s, want a script under /loadtests", got)
	}
}

// Every flag a part documents as required is on its service's command line
// (movies-connect once ran without --data: up, unhealthy, the movies topic
// empty), and the check sees a missing one.
func TestEveryRequiredFlagOfALabServiceIsSet(t *testing.T) {
	p := load(t, "load")
	for _, name := range labServices(p) {
		s := service(t, p, name)
		if len(s.Command) < 2 || s.Command[0] != "serve" {
			continue // lab load, lab compose watch: cobra commands, checked by running them
		}
		missing, err := requiredFlagsMissing(s.Command[1], s.Command[2:])
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if len(missing) > 0 {
			t.Errorf("%s: lab serve %s needs %v", name, s.Command[1], missing)
		}
	}
	cmd := service(t, p, "movies-connect").Command
	missing, err := requiredFlagsMissing("movies-connect", withoutFlag(cmd[2:], "--data"))
	if err != nil || !slices.Equal(missing, []string{"--data"}) {
		t.Errorf("movies-connect without --data: missing %v (%v), want [--data]", missing, err)
	}
}

// Every named volume a lab service mounts is a directory the image makes
// for its user: Docker gives a fresh volume the owner of the mount point in
// the image, and root where the image has none, and the parts run as
// nonroot. The check sees the image as it was (only /data/legacy).
func TestEveryVolumeOfALabServiceIsWritableByItsUser(t *testing.T) {
	p := load(t, "load")
	dockerfile := readText(t, "Dockerfile")
	unwritable := func(img image) []string {
		var out []string
		for _, name := range labServices(p) {
			for _, v := range service(t, p, name).Volumes {
				if v.Type == types.VolumeTypeVolume && !img.owned[v.Target] {
					out = append(out, name+":"+v.Target)
				}
			}
		}
		return out
	}
	if bad := unwritable(readImage(t, dockerfile)); len(bad) > 0 {
		t.Errorf("mount points the image does not make for nonroot (root-owned volumes): %v", bad)
	}
	before := regexp.MustCompile(`(?s)RUN mkdir -p (?:[^\n\\]|\\\n)+`).ReplaceAllString(dockerfile, "RUN mkdir -p /out/data/legacy")
	if bad := unwritable(readImage(t, before)); len(bad) < 4 {
		t.Errorf("with only /data/legacy in the image, unwritable volumes %v: the check does not bite", bad)
	}
}

// The build stage's Go is the toolchain go.mod asks for: the golang image
// sets GOTOOLCHAIN=local, so a older 1.26.x would refuse to build.
func TestDockerfileBuildsWithGoModsToolchain(t *testing.T) {
	gomod := readText(t, filepath.Join("..", "go.mod"))
	m := regexp.MustCompile(`(?m)^(?:toolchain go|go )(\d+\.\d+\.\d+)$`).FindAllStringSubmatch(gomod, -1)
	if len(m) == 0 {
		t.Fatal("go.mod names no go x.y.z")
	}
	want := m[len(m)-1][1]
	from := regexp.MustCompile(`(?m)^FROM golang:(\S+) AS build$`).FindStringSubmatch(readText(t, "Dockerfile"))
	if from == nil || from[1] != want {
		t.Errorf("Dockerfile builds FROM golang:%v, go.mod wants %s", from, want)
	}
}

// grafanaSchema is the newest dashboard schemaVersion each Grafana minor
// reads (Grafana's schemaversion.LATEST_VERSION); a dashboard newer than
// its Grafana is shown unmigrated at best.
var grafanaSchema = map[string]int{"12.2": 42}

func TestGrafanaUnderstandsTheDashboardsSchemaVersion(t *testing.T) {
	img := grafanaBase(t)
	m := regexp.MustCompile(`^grafana/grafana:(\d+\.\d+)\.\d+$`).FindStringSubmatch(img)
	if m == nil {
		t.Fatalf("grafana image %q: want a pinned x.y.z", img)
	}
	max, known := grafanaSchema[m[1]]
	if !known {
		t.Fatalf("grafana %s: add the schemaVersion it reads to grafanaSchema", m[1])
	}
	files, _ := filepath.Glob(filepath.Join("..", "dashboards", "json", "*.json"))
	for _, f := range files {
		var d struct {
			SchemaVersion int `json:"schemaVersion"`
		}
		if err := json.Unmarshal([]byte(readText(t, f)), &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if d.SchemaVersion > max {
			t.Errorf("%s: schemaVersion %d, grafana %s reads up to %d", filepath.Base(f), d.SchemaVersion, m[1], max)
		}
	}
}

// Kafka's log is on a volume, as the lab's stores (their offsets) are: a
// `down`/`up` must not give them an empty log. (The stores also refuse a
// reset log: kafkaio.LogResetError.)
func TestKafkaKeepsItsLogOnAVolume(t *testing.T) {
	p := load(t)
	k := service(t, p, "kafka")
	dir := env(k, "KAFKA_LOG_DIRS")
	if dir == "" || strings.HasPrefix(dir, "/tmp") {
		t.Fatalf("kafka KAFKA_LOG_DIRS=%q, want a directory on a volume", dir)
	}
	found := false
	for _, v := range k.Volumes {
		found = found || (v.Type == types.VolumeTypeVolume && v.Target == dir)
	}
	if !found {
		t.Errorf("kafka's log dir %s is not a named volume: %+v", dir, k.Volumes)
	}
	if env(k, "CLUSTER_ID") == "" {
		t.Error("kafka needs a fixed CLUSTER_ID: a formatted volume must match it on every start")
	}
}

// Each k6 script runs its own default scenario unless LAB_SCENARIO names
// one: K6_SCRIPT=ramp.js with steady's constant rate throws at start.
func TestK6RunsEachScriptsDefaultScenario(t *testing.T) {
	k6 := service(t, load(t, "load"), "k6")
	if v := env(k6, "SCENARIO"); v != "" {
		t.Errorf("k6 SCENARIO=%q by default, want empty (each script's own default)", v)
	}
	named := service(t, loadWith(t, []string{"LAB_SCENARIO=spike"}, "load"), "k6")
	if v := env(named, "SCENARIO"); v != "spike" {
		t.Errorf("with LAB_SCENARIO=spike, k6 SCENARIO=%q", v)
	}
}

// Compose runs the Kafka the lab's real platform runs (`make kafka`,
// platform/kafka/pom.xml), so what make test-kafka verifies natively is
// what the stack pulls.
func TestKafkaImageIsTheLabsKafkaVersion(t *testing.T) {
	m := regexp.MustCompile(`<kafka.version>(\S+)</kafka.version>`).FindStringSubmatch(readText(t, filepath.Join("..", "platform", "kafka", "pom.xml")))
	if m == nil {
		t.Fatal("platform/kafka/pom.xml names no kafka.version")
	}
	if img := service(t, load(t), "kafka").Image; img != "apache/kafka:"+m[1] {
		t.Errorf("kafka image %s, the lab's Kafka is %s (platform/kafka/pom.xml)", img, m[1])
	}
}

// grafanaBase is the Grafana image the grafana service builds on: compose/
// Dockerfile's grafana target, which adds the lab's plugin.
func grafanaBase(t *testing.T) string {
	t.Helper()
	g := service(t, load(t), "grafana")
	if g.Build == nil || g.Build.Target != "grafana" || g.Build.Dockerfile != "compose/Dockerfile" {
		t.Fatalf("grafana build %+v, want compose/Dockerfile target grafana", g.Build)
	}
	m := regexp.MustCompile(`(?m)^FROM (grafana/grafana:\S+) AS grafana$`).FindStringSubmatch(readText(t, "Dockerfile"))
	if m == nil {
		t.Fatal("compose/Dockerfile has no `FROM grafana/grafana:<tag> AS grafana` stage")
	}
	return m[1]
}

// Grafana loads the lab's data-source plugin (dashboards/plugin, issue [I])
// as `make plugin` lays it out: the folder named by the plugin's id, the
// backend named by plugin.json's executable, allowed unsigned, and every
// variable its provisioning reads set.
func TestGrafanaLoadsTheLabsDataSourcePlugin(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("..", "dashboards", "plugin", "plugin.json"))
	if os.IsNotExist(err) {
		t.Skip("dashboards/plugin (the data source of issue [I]) is not on this branch yet")
	}
	if err != nil {
		t.Fatal(err)
	}
	var plugin struct{ ID, Executable string }
	if err := json.Unmarshal(body, &plugin); err != nil {
		t.Fatalf("plugin.json: %v", err)
	}
	if b := grafanaBase(t); !strings.HasPrefix(b, "grafana/grafana:") {
		t.Fatalf("grafana base %s", b)
	}
	dockerfile := readText(t, "Dockerfile")
	if !strings.Contains(dockerfile, "COPY --from=plugin /out/plugin /var/lib/grafana/plugins/"+plugin.ID+"\n") {
		t.Errorf("compose/Dockerfile does not install the plugin under /var/lib/grafana/plugins/%s", plugin.ID)
	}
	if !strings.Contains(dockerfile, "-o /out/plugin/"+plugin.Executable+"_linux_$(go env GOARCH) .") {
		t.Errorf("compose/Dockerfile does not build the backend as %s_linux_<arch> (plugin.json executable %q)", plugin.Executable, plugin.Executable)
	}
	for _, f := range []string{"plugin.json", "module.js"} {
		if _, err := os.Stat(filepath.Join("..", "dashboards", "plugin", f)); err != nil || !strings.Contains(dockerfile, f) {
			t.Errorf("the plugin's %s is not copied: %v", f, err)
		}
	}
	g := service(t, load(t), "grafana")
	if allowed := strings.Split(env(g, "GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS"), ","); !slices.Contains(allowed, plugin.ID) {
		t.Errorf("grafana does not allow the unsigned plugin %s: %v", plugin.ID, allowed)
	}
}
