package prom

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/ratingslab/lab/lab/layout"
)

func parseConfig(t *testing.T, body []byte) fileConfig {
	t.Helper()
	var cfg fileConfig
	if err := yaml.Unmarshal(body, &cfg); err != nil {
		t.Fatalf("generated config is not YAML: %v\n%s", err, body)
	}
	return cfg
}

func job(t *testing.T, cfg fileConfig, name string) scrapeConfig {
	t.Helper()
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName == name {
			return sc
		}
	}
	t.Fatalf("no job %q in config", name)
	return scrapeConfig{}
}

func TestConfigScrapesEveryPartEverySecondWithPartAndVariantLabels(t *testing.T) {
	ports := layout.Ports{Base: 7700}
	targets := []Target{
		{Part: "webserver-rpc", Variant: "rpc", Addr: ports.WebserverRPC()},
		{Part: "ratings-stream", Job: "ratings-stream", Variant: "stream", Addr: ports.RatingsStream(0)},
		{Part: "ratings-stream-2", Job: "ratings-stream", Variant: "stream", Addr: ports.RatingsStream(1)},
	}
	body, err := Config(ports, targets)
	if err != nil {
		t.Fatal(err)
	}
	cfg := parseConfig(t, body)

	if cfg.Global.ScrapeInterval != "1s" || cfg.Global.ScrapeTimeout != "1s" {
		t.Errorf("global = %+v, want scrape_interval and scrape_timeout 1s", cfg.Global)
	}
	var jobs []string
	for _, sc := range cfg.ScrapeConfigs {
		jobs = append(jobs, sc.JobName)
	}
	if want := []string{"supervisor", "load", "webserver-rpc", "ratings-stream"}; !slices.Equal(jobs, want) {
		t.Errorf("jobs = %v, want %v", jobs, want)
	}

	sup := job(t, cfg, "supervisor")
	if !sup.HonorLabels || sup.StaticConfigs[0].Targets[0] != ports.Control() ||
		sup.StaticConfigs[0].Labels["part"] != "supervisor" || sup.StaticConfigs[0].Labels["variant"] != "lab" {
		t.Errorf("supervisor job = %+v, want %s with part=supervisor variant=lab and honor_labels (lab_part_up{part})", sup, ports.Control())
	}
	load := job(t, cfg, "load")
	if !load.HonorLabels || load.StaticConfigs[0].Targets[0] != ports.Load() || load.StaticConfigs[0].Labels["variant"] != "load" {
		t.Errorf("load job = %+v, want %s with variant=load and honor_labels (lab_load_*{variant})", load, ports.Load())
	}

	ws := job(t, cfg, "webserver-rpc")
	if ws.HonorLabels {
		t.Error("a service job must not honor scraped labels: part and variant belong to the scrape")
	}
	if ws.MetricsPath != "/metrics" || ws.StaticConfigs[0].Targets[0] != "127.0.0.1:7710" {
		t.Errorf("webserver-rpc job = %+v", ws)
	}

	rs := job(t, cfg, "ratings-stream")
	if len(rs.StaticConfigs) != 2 {
		t.Fatalf("ratings-stream job has %d static configs, want one per replica", len(rs.StaticConfigs))
	}
	for i, want := range []string{"ratings-stream", "ratings-stream-2"} {
		sc := rs.StaticConfigs[i]
		if sc.Labels["part"] != want || sc.Labels["variant"] != "stream" || sc.Targets[0] != ports.RatingsStream(i) {
			t.Errorf("replica %d = %+v, want part=%s variant=stream at %s", i, sc, want, ports.RatingsStream(i))
		}
	}
}

func TestConfigRejectsBadTargetsNamingTheField(t *testing.T) {
	ok := Target{Part: "movies-rpc", Variant: "rpc", Addr: "127.0.0.1:7712"}
	cases := map[string]struct {
		targets []Target
		want    string
	}{
		"no part":          {[]Target{{Variant: "rpc", Addr: "127.0.0.1:1"}}, "part"},
		"no variant":       {[]Target{{Part: "x", Addr: "127.0.0.1:1"}}, "variant"},
		"regex in part":    {[]Target{{Part: "x.*", Variant: "rpc", Addr: "127.0.0.1:1"}}, "part"},
		"url as addr":      {[]Target{{Part: "x", Variant: "rpc", Addr: "http://127.0.0.1:1/metrics"}}, "addr"},
		"duplicate part":   {[]Target{ok, ok}, "twice"},
		"clashes with lab": {[]Target{{Part: "supervisor", Variant: "lab", Addr: "127.0.0.1:1"}}, "twice"},
		"mixed honor": {[]Target{
			{Part: "a", Job: "j", Variant: "rpc", Addr: "127.0.0.1:1"},
			{Part: "b", Job: "j", Variant: "rpc", Addr: "127.0.0.1:2", HonorLabels: true},
		}, "honor_labels"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Config(layout.Ports{Base: 7700}, c.targets)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Config error = %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

func TestWriteConfigWritesAtomicallyAndNothingOnBadInput(t *testing.T) {
	dir := layout.Dir(t.TempDir())
	ports := layout.Ports{Base: 7700}

	if _, err := WriteConfig(dir, ports, []Target{{Part: "", Variant: "rpc", Addr: "127.0.0.1:1"}}); err == nil {
		t.Fatal("WriteConfig accepted a target without part")
	}
	if _, err := os.Stat(ConfigFile(dir)); !os.IsNotExist(err) {
		t.Fatalf("bad input left a config file behind (stat: %v)", err)
	}

	path, err := WriteConfig(dir, ports, []Target{{Part: "movies-rpc", Variant: "rpc", Addr: ports.MoviesRPC()}})
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(string(dir), "prometheus.yml") {
		t.Errorf("config path = %s", path)
	}
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Config(ports, []Target{{Part: "movies-rpc", Variant: "rpc", Addr: ports.MoviesRPC()}})
	if string(body) != string(want) {
		t.Errorf("written config differs from Config()")
	}
	leftovers, _ := filepath.Glob(filepath.Join(string(dir), ".prometheus.yml.*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestArgsRunPrometheusInsideTheLab(t *testing.T) {
	dir := layout.Dir("/tmp/lab-x")
	ports := layout.Ports{Base: 9100}
	args := Args("/tmp/lab-x/prometheus.yml", dir, ports)
	for _, want := range []string{
		"--config.file=/tmp/lab-x/prometheus.yml",
		"--storage.tsdb.path=/tmp/lab-x/data/prometheus",
		"--web.listen-address=127.0.0.1:9102",
		"--web.enable-lifecycle",
		"--storage.tsdb.retention.time=" + RetentionTime,
	} {
		if !slices.Contains(args, want) {
			t.Errorf("args %v lack %s", args, want)
		}
	}
	if URL(ports) != "http://127.0.0.1:9102" {
		t.Errorf("URL = %s", URL(ports))
	}
}

func TestPrometheusRunsWithTheLabsGOGCUnlessTheUserSetOne(t *testing.T) {
	none := func(string) string { return "" }
	if got := Env(none); len(got) != 1 || got[0] != "GOGC="+GOGC {
		t.Errorf("Env with no GOGC set = %q, want [GOGC=%s]", got, GOGC)
	}
	users := func(k string) string {
		if k == "GOGC" {
			return "200"
		}
		return ""
	}
	if got := Env(users); len(got) != 0 {
		t.Errorf("Env with the user's GOGC=200 = %q, want nothing added (the user's applies)", got)
	}
}
