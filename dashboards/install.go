package dashboards

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Files are the committed dashboards (json/) and Grafana provisioning
// (provisioning/), built into the lab binary so a native Grafana can be
// provisioned wherever `lab` runs.
//
//go:embed json provisioning
var Files embed.FS

// Install writes the provisioning and the dashboards under dst (for a native
// lab, <state dir>/grafana) and returns the directories to hand to
// prom.GrafanaEnv: provisioning (datasources/, dashboards/) and the JSON
// folder. Files left from an earlier run are replaced.
func Install(dst string) (provisioningDir, jsonDir string, err error) {
	provisioningDir = filepath.Join(dst, "provisioning")
	jsonDir = filepath.Join(dst, "dashboards")
	for _, d := range []string{provisioningDir, jsonDir} {
		if err := os.RemoveAll(d); err != nil {
			return "", "", fmt.Errorf("grafana files: %w", err)
		}
	}
	if err := copyTree("provisioning", provisioningDir, "*"); err != nil {
		return "", "", err
	}
	if err := copyTree("json", jsonDir, "*.json"); err != nil {
		return "", "", err
	}
	return provisioningDir, jsonDir, nil
}

// copyTree copies the files under root whose names match pattern.
func copyTree(root, dst, pattern string) error {
	return fs.WalkDir(Files, root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if ok, _ := filepath.Match(pattern, d.Name()); !ok {
			return nil
		}
		body, err := Files.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.WriteFile(target, body, 0o644); err != nil {
			return fmt.Errorf("grafana files: %w", err)
		}
		return nil
	})
}
