package prom

import (
	"os"
	"os/exec"

	"github.com/ratingslab/lab/lab/layout"
)

// Retention keeps a native lab's TSDB small: a lab is about the last runs,
// and journals keep what must outlive it.
const (
	RetentionTime = "2d"
	RetentionSize = "1GB"
)

// InstallHint tells a user without Prometheus how to get it; `lab up` prints
// it and runs on without metrics storage.
const InstallHint = "prometheus not found: install it to record metrics " +
	"(Debian/Ubuntu: sudo apt-get install --no-install-recommends prometheus; " +
	"elsewhere: https://prometheus.io/download/ and put `prometheus` on PATH)"

// wellKnownPrometheus are places packages install the binary when PATH
// (for example a service manager's) does not include them.
var wellKnownPrometheus = []string{"/usr/bin/prometheus", "/usr/local/bin/prometheus"}

// Find locates an installed prometheus binary: PATH first, then the usual
// package locations.
func Find() (path string, ok bool) {
	return findBinary("prometheus", wellKnownPrometheus)
}

// Args are prometheus' flags for a native lab: the generated config, the
// TSDB under the state dir, loopback listen address, small retention, and
// the lifecycle API so the supervisor can reload the config when parts change.
func Args(configFile string, dir layout.Dir, ports layout.Ports) []string {
	return []string{
		"--config.file=" + configFile,
		"--storage.tsdb.path=" + DataDir(dir),
		"--storage.tsdb.retention.time=" + RetentionTime,
		"--storage.tsdb.retention.size=" + RetentionSize,
		"--web.listen-address=" + ports.Prometheus(),
		"--web.enable-lifecycle",
	}
}

// GOGC is the collector target of the lab's Prometheus. Its heap is mostly
// the head block, which a lab's handful of targets keeps small (~1,700
// series idle, ~4,200 under load) and whose work does not grow with the load
// the lab drives: a tighter goal than Go's default 100 costs it a few more
// short collections of a small heap, and keeps the largest process of an
// idle lab smaller (Prometheus 2.53 made 50 its own default, #14176; Debian
// ships 2.42). 25 rather than 50: after five idle minutes its anonymous
// memory was 24.5-27.3 MiB against 26.5-31.1 (its live heap grows from ~12
// to ~17 MiB around the first head chunk cut, at 2 min, and the goal with
// it), for 35 instead of 17-20 collections in those minutes (+0.2 s of CPU)
// and no measurable difference in a minute of 300 ratings/s per variant
// (docs/benchmarks.md, wave 7).
const GOGC = "25"

// Env is the environment added to Prometheus' own (the lab's processes
// inherit the user's): GOGC, unless the user set one for 'lab up', which
// then applies to Prometheus as to every other lab process.
func Env(getenv func(string) string) []string {
	if getenv("GOGC") != "" {
		return nil
	}
	return []string{"GOGC=" + GOGC}
}

// URL is the base URL of a native lab's Prometheus.
func URL(ports layout.Ports) string { return "http://" + ports.Prometheus() }

func findBinary(name string, wellKnown []string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	for _, p := range wellKnown {
		if isExecutable(p) {
			return p, true
		}
	}
	return "", false
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
