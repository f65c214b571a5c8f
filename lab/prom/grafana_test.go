package prom

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/layout"
)

// grafanaTree lays out what an installed Grafana looks like on disk: a
// binary and a home with conf/defaults.ini.
func grafanaTree(t *testing.T, binary string, home string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(binary), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(binary, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if home != "" {
		if err := os.MkdirAll(filepath.Join(home, "conf"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, "conf", "defaults.ini"), []byte("[paths]\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return binary
}

// finder answers like findBinary on a machine where only `have` are installed.
func finder(have map[string]string) func(string, []string) (string, bool) {
	return func(name string, _ []string) (string, bool) {
		p, ok := have[name]
		return p, ok
	}
}

func TestFindGrafanaTarballUsesUnifiedBinaryAndItsHome(t *testing.T) {
	root := t.TempDir()
	home := filepath.Join(root, "grafana-v11.5.0")
	bin := grafanaTree(t, filepath.Join(home, "bin", "grafana"), home)
	grafanaTree(t, filepath.Join(home, "bin", "grafana-server"), "")

	g, ok := findGrafana(finder(map[string]string{"grafana": bin, "grafana-server": filepath.Join(home, "bin", "grafana-server")}), nil)
	if !ok {
		t.Fatal("tarball install not found")
	}
	if g.Binary != bin || g.HomePath != home {
		t.Errorf("found %+v, want binary %s home %s", g, bin, home)
	}
	if want := []string{"server", "--homepath", home}; !slices.Equal(g.Args(), want) {
		t.Errorf("args = %v, want %v", g.Args(), want)
	}
}

func TestFindGrafanaPackageWithOldServerBinaryAndSharedHome(t *testing.T) {
	root := t.TempDir()
	bin := grafanaTree(t, filepath.Join(root, "usr", "sbin", "grafana-server"), "")
	home := filepath.Join(root, "usr", "share", "grafana")
	grafanaTree(t, filepath.Join(home, "bin", "unused"), home)

	g, ok := findGrafana(finder(map[string]string{"grafana-server": bin}), []string{filepath.Join(root, "nowhere"), home})
	if !ok {
		t.Fatal("package install not found")
	}
	if g.HomePath != home || len(g.Subcommand) != 0 {
		t.Errorf("found %+v, want grafana-server without subcommand, home %s", g, home)
	}
	if want := []string{"--homepath", home}; !slices.Equal(g.Args(), want) {
		t.Errorf("args = %v, want %v", g.Args(), want)
	}
}

func TestFindGrafanaNeedsBinaryAndHome(t *testing.T) {
	root := t.TempDir()
	bin := grafanaTree(t, filepath.Join(root, "bin", "grafana"), "")
	if g, ok := findGrafana(finder(map[string]string{"grafana": bin}), []string{filepath.Join(root, "none")}); ok {
		t.Errorf("found %+v without a home path (conf/defaults.ini)", g)
	}
	if g, ok := findGrafana(finder(nil), nil); ok {
		t.Errorf("found %+v with no binary installed", g)
	}
}

func TestGrafanaEnvKeepsStateInTheLabAndProvisionsTheNativePrometheus(t *testing.T) {
	env := GrafanaEnv(layout.Dir("/tmp/lab-y"), layout.Ports{Base: 9200}, "/tmp/lab-y/grafana/provisioning", "/tmp/lab-y/grafana/dashboards")
	for _, want := range []string{
		"GF_PATHS_DATA=/tmp/lab-y/data/grafana",
		"GF_PATHS_PROVISIONING=/tmp/lab-y/grafana/provisioning",
		"GF_SERVER_HTTP_ADDR=127.0.0.1",
		"GF_SERVER_HTTP_PORT=9203",
		"LAB_PROMETHEUS_URL=http://127.0.0.1:9202",
		"LAB_DASHBOARDS_DIR=/tmp/lab-y/grafana/dashboards",
		"GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH=/tmp/lab-y/grafana/dashboards/overview.json",
	} {
		if !slices.Contains(env, want) {
			t.Errorf("env lacks %s:\n%v", want, env)
		}
	}
}

func TestGrafanaReadyAsksTheHealthAPI(t *testing.T) {
	var failing atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/health" {
			http.NotFound(w, r)
			return
		}
		if failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"database":"failing"}`)
			return
		}
		fmt.Fprint(w, `{"database":"ok","version":"11.6.0"}`)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := GrafanaReady(ctx, srv.URL+"/"); err != nil {
		t.Errorf("healthy grafana: %v", err)
	}
	failing.Store(true)
	if err := GrafanaReady(ctx, srv.URL); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("failing grafana = %v, want an error naming HTTP 503", err)
	}
}
