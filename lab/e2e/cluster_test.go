package e2e

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ratingslab/lab/experiments"
	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/lab/labtest"
)

// shortened writes a copy of a shipped experiment with every duration of
// its schedule (load duration, at, for, recovery, drain) scaled by f,
// so the suites can run the shipped files in a fraction of their time.
func shortened(t *testing.T, name string, f float64) string {
	t.Helper()
	data, err := fs.ReadFile(experiments.FS(), name+".yaml")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^(\s*-?\s*(?:duration|at|for|recovery|drain):\s*)(\d+)s\s*$`)
	out := re.ReplaceAllStringFunc(string(data), func(line string) string {
		m := re.FindStringSubmatch(line)
		n, _ := strconv.Atoi(m[2])
		return m[1] + strconv.Itoa(int(float64(n)*f+0.5)) + "s"
	})
	file := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// The shipped experiments that fault the log variant run on the stream
// variant, shortened to half their length, on the platform under test: on
// the embedded broker in the first pass of make test, on three Apache
// Kafka nodes in the second (LAB_E2E_KAFKA=cluster), where the cluster's
// own experiments (leader failover, broker minority/majority outages) run
// too. Whatever a fault does to availability, no acknowledged rating may
// be lost or counted twice, and every fault is applied as planned.
func TestShippedLogExperiments(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	l := labtest.Start(t, "--no-prometheus")
	names := []string{"ratings-crash", "poison-event", "broker-outage"}
	if labtest.OnCluster() {
		names = append(names, "leader-failover", "broker-minority-outage")
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			out, _ := l.Run("chaos", "run", shortened(t, name, 0.5), "--variants", "stream", "--quiet")
			m := regexp.MustCompile(`Journal: (\S+)`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("lab chaos run %s: no journal:\n%s", name, out)
			}
			j, err := journal.Read(m[1])
			if err != nil {
				t.Fatal(err)
			}
			if j.Error != "" {
				t.Fatalf("run error: %s\n%s", j.Error, out)
			}
			for _, f := range j.Faults {
				if f.Error != "" || f.InjectedAt.IsZero() {
					t.Errorf("fault %s/%s not applied: %q", f.ID, f.Variant, f.Error)
				}
				if name == "leader-failover" && !strings.Contains(strings.Join(f.Targets, " "), "broker-") {
					t.Errorf("leader failover hit %v; want the broker it killed named", f.Targets)
				}
			}
			checked := 0
			for _, ph := range j.Phases {
				for _, p := range ph.Probes {
					if ph.Variant == "stream" && (strings.HasPrefix(p.Name, "lost_writes") || strings.HasPrefix(p.Name, "duplicates")) {
						checked++
						if !p.OK {
							t.Errorf("%s %s: %s (%s)", ph.Name, p.Name, p.Observed, p.Tolerance)
						}
					}
				}
			}
			if checked == 0 {
				t.Errorf("no lost_writes or duplicates probe in the journal:\n%s", out)
			}
			if t.Failed() {
				t.Logf("lab chaos run:\n%s", out)
			}
			// The next experiment starts from a healthy lab.
			for _, p := range l.Status(t) {
				if p.Health != "healthy" {
					l.WaitPart(p.Name, "healthy", 60*time.Second)
				}
			}
		})
	}
}
