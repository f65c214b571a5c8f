package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/lab/load/ledger"
)

// Replaying a ratings.dat file through both variants of the running lab
// yields equal averages in both, and a ledger with one outcome per request.
func TestLoadReplayGivesEqualAveragesInBothVariants(t *testing.T) {
	labtest.SkipUnlessE2E(t)
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
	rpc, stream := "http://"+l.Ports.WebserverRPC(), "http://"+l.Ports.WebserverStream()
	labtest.Eventually(t, 20*time.Second, "equal averages in both variants", func() error {
		for movie := int64(30); movie <= 45; movie++ {
			a, b := getMovie(t, rpc, movie), getMovie(t, stream, movie)
			if a.Count != b.Count || a.SumTenths != b.SumTenths {
				return fmt.Errorf("movie %d: rpc count %d sum %d, stream count %d sum %d", movie, a.Count, a.SumTenths, b.Count, b.SumTenths)
			}
		}
		return nil
	})
}
