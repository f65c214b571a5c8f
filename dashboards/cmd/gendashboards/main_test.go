package main

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestWritesEveryDashboardAndRemovesStaleOnes(t *testing.T) {
	out := t.TempDir()
	for name, body := range map[string]string{"renamed.json": "{}", "README.md": "kept"} {
		if err := os.WriteFile(filepath.Join(out, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := run([]string{"gendashboards", "-out", out}, io.Discard); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"README.md", "kafka.json", "overview.json", "rpc.json", "stream.json"}; !slices.Equal(names, want) {
		t.Errorf("files %v, want %v", names, want)
	}
}

func TestRejectsUnknownFlags(t *testing.T) {
	if err := run([]string{"gendashboards", "-bogus"}, io.Discard); err == nil {
		t.Error("unknown flag accepted")
	}
}
