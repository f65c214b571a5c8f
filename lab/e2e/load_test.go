package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/lab/load/ledger"
	"github.com/ratingslab/lab/services/model"
)

// Replaying a ratings.dat file through both variants of the running lab
// leaves each with exactly the file's count and sum per movie, and a
// ledger with one outcome per request.
func TestLoadReplayGivesTheFilesTotalsInBothVariants(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	t.Parallel()
	l := labtest.Start(t, "--no-prometheus")
	fixture, _ := filepath.Abs("testdata/ratings.dat")
	out := l.MustRun("load", "--from", fixture, "--variants", "rpc,stream", "--rate", "40/s", "--json", "--quiet", "--metrics-listen", "off")
	var summary struct {
		Ledger string `json:"ledger"`
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &summary); err != nil {
		t.Fatalf("lab load --json: %v\n%s", err, out)
	}
	entries, err := ledger.Read(summary.Ledger)
	if err != nil {
		t.Fatalf("read ledger %q: %v", summary.Ledger, err)
	}
	if !entries.Complete() {
		t.Fatalf("ledger %s has no end line", summary.Ledger)
	}
	acked := map[string]int{}
	for _, e := range entries.Entries {
		if e.Outcome == ledger.Acknowledged {
			acked[e.Variant]++
		}
	}
	if acked["rpc"] != 80 || acked["stream"] != 80 {
		t.Fatalf("acknowledged per variant %v, want 80 each (file has 80 lines)", acked)
	}
	// Each variant against the file itself (not only against each other:
	// both could be wrong alike), for every movie of the catalog page the
	// file touches and the ones around it.
	want := fileTotals(t, fixture)
	for variant, base := range map[string]string{"rpc": "http://" + l.Ports.WebserverRPC(), "stream": "http://" + l.Ports.WebserverStream()} {
		labtest.Eventually(t, 20*time.Second, variant+" to hold the file's counts and sums", func() error {
			for movie := int64(25); movie <= 50; movie++ {
				m := getMovie(t, base, movie)
				if w := want[movie]; m.Count != w.Count || m.SumTenths != w.SumTenth {
					return fmt.Errorf("movie %d: count %d sum %d tenths, the file has %d and %d", movie, m.Count, m.SumTenths, w.Count, w.SumTenth)
				}
			}
			return nil
		})
	}
}

// fileTotals reads a ratings.dat file ("user::movie::rating" per line, whole
// points) into count and sum per movie, independently of lab/load's reader.
func fileTotals(t *testing.T, path string) map[int64]model.CountAndSum {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]model.CountAndSum{}
	lines := 0
	for line := range strings.Lines(string(data)) {
		f := strings.Split(strings.TrimSpace(line), "::")
		if len(f) < 3 {
			continue
		}
		movie, err1 := strconv.ParseInt(f[1], 10, 64)
		rating, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: bad line %q", path, line)
		}
		cs := out[movie]
		cs.Count++
		cs.SumTenth += rating * 10
		out[movie] = cs
		lines++
	}
	if lines != 80 || len(out) < 5 {
		t.Fatalf("%s: %d ratings of %d movies; the test expects the 80-line fixture", path, lines, len(out))
	}
	return out
}
