//go:build unix

package webserver_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/lib/servetest/browsertest"
	"github.com/ratingslab/lab/services/webserver"
)

// TestThePageWorksInHeadlessChromium loads the page in a real browser, rates
// a movie through the form, and waits for the row's count and average to
// update from the API. It runs when a Chromium is installed.
func TestThePageWorksInHeadlessChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	browser := browsertest.FindChromium()
	if browser == "" {
		t.Skip("no chromium on PATH")
	}
	b := newMemoryBackend(5)
	site := httptest.NewServer(webserver.New(b, webserver.Options{Variant: "stream", AcceptedStatus: http.StatusAccepted}, nil))
	defer site.Close()

	page := browsertest.Launch(t, browser)
	page.Navigate(t, site.URL+"/")
	if title := page.Eval(t, `document.title`); title != "Ratings Lab — stream" {
		t.Fatalf("title %q", title)
	}
	if rows := page.Eval(t, `document.querySelectorAll("#movies tbody tr").length`); rows != float64(5) {
		t.Fatalf("%v rows, want 5", rows)
	}
	page.Eval(t, `document.getElementById("movie").value = "3";
		document.getElementById("rating").value = "6.5";
		document.getElementById("rate-submit").click(); true`)

	servetest.Eventually(t, 10*time.Second, "the row of movie 3 to show the rating", func() error {
		count := page.Eval(t, `document.querySelector("#movie-3 .count").textContent`)
		average := page.Eval(t, `document.querySelector("#movie-3 .average").textContent`)
		if count != "1" || average != "6.50" {
			return fmt.Errorf("row of movie 3 shows count %v average %v; result: %v", count, average, page.Eval(t, `document.getElementById("result").textContent`))
		}
		return nil
	})
	if result, _ := page.Eval(t, `document.getElementById("result").textContent`).(string); !strings.Contains(result, "HTTP 202") {
		t.Errorf("result line %q does not report the 202", result)
	}
	if applied := b.appliedRatings(); len(applied) != 1 || applied[0].MovieID != 3 || applied[0].Tenths != 65 {
		t.Errorf("backend got %+v, want one rating 6.5 of movie 3", applied)
	}
	if errs := page.Exceptions(); len(errs) > 0 {
		t.Errorf("JavaScript exceptions: %v", errs)
	}
}
