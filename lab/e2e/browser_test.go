//go:build unix

package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/lib/servetest/browsertest"
)

// A user opens each variant's page in a real browser, rates a movie through
// the form, and sees the new average — on the running lab.
func TestBrowserRatesAMovieOnBothVariants(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	t.Parallel()
	browser := browsertest.FindChromium()
	servetest.Need(t, browser != "", "chromium", "apt-get install chromium")
	l := labtest.Start(t, "--no-prometheus")
	page := browsertest.Launch(t, browser)
	for variant, addr := range map[string]string{"rpc": l.Ports.WebserverRPC(), "stream": l.Ports.WebserverStream()} {
		t.Run(variant, func(t *testing.T) {
			page.Navigate(t, "http://"+addr+"/")
			if rows, _ := page.Eval(t, `document.querySelectorAll("#movies tbody tr").length`).(float64); rows < 50 {
				t.Fatalf("page lists %v movies, want the first page of the catalog", rows)
			}
			page.Eval(t, `document.getElementById("movie").value = "12";
				document.getElementById("rating").value = "9";
				document.getElementById("rate-submit").click(); true`)
			labtest.Eventually(t, 15*time.Second, "the row of movie 12 to show the rating", func() error {
				count := page.Eval(t, `(document.querySelector("#movie-12 .count")||{}).textContent`)
				avg := page.Eval(t, `(document.querySelector("#movie-12 .average")||{}).textContent`)
				if count != "1" || avg != "9.00" {
					return fmt.Errorf("count %v average %v; result line: %v", count, avg, page.Eval(t, `document.getElementById("result").textContent`))
				}
				return nil
			})
			if ex := page.Exceptions(); len(ex) > 0 {
				t.Errorf("JavaScript exceptions: %v", ex)
			}
		})
	}
}
