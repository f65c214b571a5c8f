package dashboards

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/ratingslab/lab/lab/prom"
)

func TestInstallWritesTheProvisioningAndDashboardsForANativeGrafana(t *testing.T) {
	dst := t.TempDir()
	// A file left from an older run must not survive.
	if err := os.MkdirAll(filepath.Join(dst, "dashboards"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "dashboards", "old.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}

	provisioning, jsonDir, err := Install(dst)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(jsonDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"kafka.json", "overview.json", "rpc.json", "stream.json"}; !slices.Equal(names, want) {
		t.Errorf("installed dashboards %v, want %v", names, want)
	}
	for name, body := range generated(t) {
		got, err := os.ReadFile(filepath.Join(jsonDir, name))
		if err != nil || string(got) != string(body) {
			t.Errorf("%s: installed copy differs from the generator's output (%v)", name, err)
		}
	}

	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, UID, Type, URL string
			IsDefault            bool `yaml:"isDefault"`
			JSONData             struct {
				TimeInterval string `yaml:"timeInterval"`
			} `yaml:"jsonData"`
		}
	}
	readYAML(t, filepath.Join(provisioning, "datasources", "prometheus.yaml"), &ds)
	if len(ds.Datasources) != 1 {
		t.Fatalf("datasources %+v, want one", ds.Datasources)
	}
	d := ds.Datasources[0]
	if ds.APIVersion != 1 || d.UID != DatasourceUID || d.Type != "prometheus" || !d.IsDefault {
		t.Errorf("datasource %+v, want the default prometheus with uid %s", d, DatasourceUID)
	}
	if d.URL != "${"+prom.EnvPrometheusURL+"}" {
		t.Errorf("datasource url %q, want ${%s} (set by compose and by native lab up)", d.URL, prom.EnvPrometheusURL)
	}
	if d.JSONData.TimeInterval != prom.ScrapeInterval {
		t.Errorf("datasource timeInterval %q, want the scrape interval %s ($__rate_interval derives from it)", d.JSONData.TimeInterval, prom.ScrapeInterval)
	}

	var lab struct {
		Datasources []struct {
			Name, UID, Type string
			JSONData        struct {
				StateDir   string `yaml:"stateDir"`
				ControlURL string `yaml:"controlUrl"`
			} `yaml:"jsonData"`
		}
	}
	readYAML(t, filepath.Join(provisioning, "datasources", "lab-journals.yaml"), &lab)
	if len(lab.Datasources) != 1 || lab.Datasources[0].UID != LabDatasourceUID || lab.Datasources[0].Type != prom.LabPluginID ||
		lab.Datasources[0].JSONData.StateDir != "${"+prom.EnvStateDir+"}" || lab.Datasources[0].JSONData.ControlURL != "${"+prom.EnvControlURL+"}" {
		t.Errorf("lab data source %+v, want uid %s of type %s reading ${%s} and ${%s}", lab.Datasources, LabDatasourceUID, prom.LabPluginID, prom.EnvStateDir, prom.EnvControlURL)
	}

	var providers struct {
		Providers []struct {
			Name, Type string
			Options    struct{ Path string }
		}
	}
	readYAML(t, filepath.Join(provisioning, "dashboards", "lab.yaml"), &providers)
	if len(providers.Providers) != 1 || providers.Providers[0].Type != "file" ||
		providers.Providers[0].Options.Path != "${"+prom.EnvDashboardsDir+"}" {
		t.Errorf("dashboard providers %+v, want one file provider at ${%s}", providers.Providers, prom.EnvDashboardsDir)
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(body, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
