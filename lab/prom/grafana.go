package prom

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/ratingslab/lab/lab/layout"
)

// GrafanaInstallHint tells a user without Grafana how to get it; `lab up`
// runs on without it (Prometheus' own UI still answers queries).
const GrafanaInstallHint = "grafana not found: install it to see the lab's dashboards " +
	"(https://grafana.com/docs/grafana/latest/setup-grafana/installation/ — the Debian/Ubuntu " +
	"package from apt.grafana.com, or a standalone tarball with its bin/ on PATH)"

// Grafana is an installed Grafana server.
type Grafana struct {
	Binary string
	// Subcommand precedes the flags: "server" for the unified `grafana`
	// binary (Grafana 10+), none for the older `grafana-server`.
	Subcommand []string
	// HomePath holds conf/defaults.ini and public/ (the web assets).
	HomePath string
}

// The lab's environment variables in dashboards/provisioning: the same
// provisioning files serve compose (container paths) and native mode.
const (
	EnvPrometheusURL = "LAB_PROMETHEUS_URL"
	EnvDashboardsDir = "LAB_DASHBOARDS_DIR"
	// The lab data source's settings (provisioning/datasources/lab-journals.yaml).
	EnvStateDir   = "LAB_STATE_DIR"
	EnvControlURL = "LAB_CONTROL_URL"
	// LabPluginID is the lab data source plugin (dashboards/plugin), unsigned.
	LabPluginID = "ratingslab-lab-datasource"
)

// Where packages put Grafana: deb/rpm (/usr/sbin, /usr/share/grafana),
// Homebrew, and the conventional /opt tarball location.
var (
	wellKnownGrafana       = []string{"/usr/sbin/grafana", "/usr/share/grafana/bin/grafana", "/opt/grafana/bin/grafana", "/usr/local/bin/grafana"}
	wellKnownGrafanaServer = []string{"/usr/sbin/grafana-server", "/usr/share/grafana/bin/grafana-server", "/opt/grafana/bin/grafana-server"}
	wellKnownGrafanaHomes  = []string{"/usr/share/grafana", "/usr/local/share/grafana", "/opt/homebrew/share/grafana", "/opt/grafana"}
)

// FindGrafana locates an installed Grafana and its home path. It prefers
// the unified `grafana server` over the deprecated `grafana-server`, and
// reports ok=false when no binary or no home path (conf/defaults.ini) is found.
func FindGrafana() (Grafana, bool) {
	return findGrafana(func(name string, wellKnown []string) (string, bool) {
		return findBinary(name, wellKnown)
	}, wellKnownGrafanaHomes)
}

func findGrafana(find func(name string, wellKnown []string) (string, bool), homes []string) (Grafana, bool) {
	g := Grafana{}
	if p, ok := find("grafana", wellKnownGrafana); ok {
		g = Grafana{Binary: p, Subcommand: []string{"server"}}
	} else if p, ok := find("grafana-server", wellKnownGrafanaServer); ok {
		g = Grafana{Binary: p}
	} else {
		return Grafana{}, false
	}
	home, ok := grafanaHome(g.Binary, homes)
	if !ok {
		return Grafana{}, false
	}
	g.HomePath = home
	return g, true
}

// grafanaHome finds the home path: a tarball's binary lives in <home>/bin,
// packages keep home elsewhere (deb/rpm: /usr/share/grafana).
func grafanaHome(binary string, homes []string) (string, bool) {
	if real, err := filepath.EvalSymlinks(binary); err == nil {
		binary = real
	}
	candidates := append([]string{filepath.Dir(filepath.Dir(binary))}, homes...)
	for _, h := range candidates {
		if fi, err := os.Stat(filepath.Join(h, "conf", "defaults.ini")); err == nil && fi.Mode().IsRegular() {
			return h, true
		}
	}
	return "", false
}

// Args are the command-line arguments after the binary.
func (g Grafana) Args() []string {
	return append(append([]string{}, g.Subcommand...), "--homepath", g.HomePath)
}

// GrafanaDataDir holds a native lab's Grafana database and plugins.
func GrafanaDataDir(dir layout.Dir) string { return dir.Data("grafana") }

// GrafanaEnv configures Grafana for a native lab through GF_* variables (no
// ini file to write): state under the lab dir, loopback listen address,
// anonymous access (the lab is a local tool), no phoning home, and the lab's
// provisioning — provisioningDir holds datasources/ and dashboards/ (a copy
// of dashboards/provisioning), dashboardsDir the dashboard JSON files.
// Append the result to os.Environ() for the child process.
func GrafanaEnv(dir layout.Dir, ports layout.Ports, provisioningDir, dashboardsDir string) []string {
	host, port, _ := net.SplitHostPort(ports.Grafana()) // layout always yields host:port
	return []string{
		"GF_PATHS_DATA=" + GrafanaDataDir(dir),
		"GF_PATHS_PLUGINS=" + filepath.Join(GrafanaDataDir(dir), "plugins"),
		"GF_PATHS_LOGS=" + dir.Path("logs", "grafana"),
		"GF_PATHS_PROVISIONING=" + provisioningDir,
		"GF_SERVER_HTTP_ADDR=" + host,
		"GF_SERVER_HTTP_PORT=" + port,
		"GF_LOG_MODE=console",
		"GF_AUTH_ANONYMOUS_ENABLED=true",
		"GF_AUTH_ANONYMOUS_ORG_ROLE=Editor", // Explore needs Editor
		"GF_ANALYTICS_REPORTING_ENABLED=false",
		"GF_ANALYTICS_CHECK_FOR_UPDATES=false",
		"GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES=false",
		"GF_NEWS_NEWS_FEED_ENABLED=false",
		"GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH=" + filepath.Join(dashboardsDir, "overview.json"),
		EnvPrometheusURL + "=" + URL(ports),
		EnvDashboardsDir + "=" + dashboardsDir,
		EnvStateDir + "=" + absDir(dir),
		EnvControlURL + "=http://" + ports.Control(),
		"GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS=" + LabPluginID,
	}
}

// GrafanaReady asks once whether Grafana answers and its database is up
// (GET /api/health); callers poll it with their own deadline. Grafana has no
// /healthz JSON like the lab's parts.
func GrafanaReady(ctx context.Context, baseURL string) error {
	return plain(ctx, http.MethodGet, strings.TrimRight(baseURL, "/")+"/api/health")
}

// GrafanaURL is the base URL of a native lab's Grafana.
func GrafanaURL(ports layout.Ports) string { return "http://" + ports.Grafana() }

// absDir is the state dir as an absolute path (Grafana runs elsewhere).
func absDir(dir layout.Dir) string {
	if abs, err := filepath.Abs(string(dir)); err == nil {
		return abs
	}
	return string(dir)
}
