package supervisor

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/parts"
)

func TestPartBinaryIsUsedOnlyWhenBesideLabAndNotOlder(t *testing.T) {
	write := func(path string, mode os.FileMode, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	for _, tc := range []struct {
		name     string
		part     bool
		mode     os.FileMode
		partTime time.Time
		want     bool
	}{
		{"no lab-part: lab serve", false, 0, now, false},
		{"newer lab-part", true, 0o755, now.Add(time.Second), true},
		{"same age (one build)", true, 0o755, now, true},
		{"older lab-part (lab rebuilt alone): lab serve", true, 0o755, now.Add(-time.Minute), false},
		{"not executable: lab serve", true, 0o644, now.Add(time.Second), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			exe := filepath.Join(dir, "lab")
			write(exe, 0o755, now)
			part := filepath.Join(dir, PartBinaryName)
			if tc.part {
				write(part, tc.mode, tc.partTime)
			}
			got := PartBinary(exe)
			if want := map[bool]string{true: part, false: ""}[tc.want]; got != want {
				t.Errorf("PartBinary = %q, want %q", got, want)
			}
			cfg := Config{Exe: exe, PartExe: got}
			if want := map[bool]string{true: part, false: exe}[tc.want]; cfg.partExe() != want {
				t.Errorf("parts run from %q, want %q", cfg.partExe(), want)
			}
		})
	}
}

func TestSupervisorBinaryIsTheOneBesideLabAndNotOlder(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "lab")
	sup := filepath.Join(dir, SupervisorBinaryName)
	for _, p := range []string{exe, sup} {
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if got := SupervisorBinary(exe); got != sup {
		t.Errorf("SupervisorBinary = %q, want %q", got, sup)
	}
	old := time.Now().Add(-time.Minute)
	if err := os.Chtimes(sup, old, old); err != nil {
		t.Fatal(err)
	}
	if got := SupervisorBinary(exe); got != "" {
		t.Errorf("SupervisorBinary with an older lab-supervisor = %q, want \"\" (lab up runs lab supervise)", got)
	}
}

func TestPartsRunFromPartExeAndExtrasFromTheirOwnPath(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: layout.Dir(dir), Ports: layout.Ports{Base: 7700}, Options: parts.Options{Breakers: true},
		Exe: "/opt/lab/lab", PartExe: "/opt/lab/lab-part",
		Extras: []Extra{{Name: "prometheus", Path: "/usr/bin/prometheus", Addr: "127.0.0.1:7702", HealthURL: "http://127.0.0.1:7702/-/ready"}}}
	s, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var served int
	for _, p := range s.procs {
		switch {
		case p.name == "prometheus":
			if p.path != "/usr/bin/prometheus" {
				t.Errorf("prometheus runs %q", p.path)
			}
		case len(p.args) > 0 && p.args[0] == "serve":
			served++
			if p.path != cfg.PartExe {
				t.Errorf("%s runs %q %q, want %q", p.name, p.path, p.args, cfg.PartExe)
			}
		}
	}
	if served < 8 {
		t.Errorf("%d parts run with serve, want every lab part (8 or more)", served)
	}
}
