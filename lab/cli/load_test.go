package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/load"
)

// ratingsAPI answers like a webserver: 201 for ratings, 422 for unknown
// movies, 200/404 for reads. It counts the API requests it got.
func ratingsAPI(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.Write([]byte(`{"status":"ok"}`))
			return
		}
		n.Add(1)
		var b struct {
			MovieID int64 `json:"movie_id"`
		}
		if r.Method == http.MethodPost {
			json.NewDecoder(r.Body).Decode(&b)
			if b.MovieID >= load.UnknownMovieBase {
				w.WriteHeader(http.StatusUnprocessableEntity)
				return
			}
			w.WriteHeader(http.StatusCreated)
			return
		}
		if strings.Contains(r.URL.Path, "/9") && len(r.URL.Path) > len("/api/movies/900000")-1 {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Write([]byte(`{}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestLoadRunsAScenarioAndWritesItsLedger(t *testing.T) {
	dir := t.TempDir()
	rpc, got := ratingsAPI(t)
	out := mustRunLab(t, dir, "load", "--scenario", "smoke", "--duration", "1s", "--rate", "20/s", "--variants", "rpc",
		"--target", "rpc="+rpc.URL, "--metrics-listen", "127.0.0.1:0", "--run-id", "clitest", "--json", "--quiet")
	var sum load.Summary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if sum.RunID != "clitest" || len(sum.Variants) != 1 || sum.Variants[0].Sent != 20 || got.Load() != 20 {
		t.Fatalf("want 20 requests to rpc, got summary %+v and %d at the server", sum, got.Load())
	}
	want := filepath.Join(layout.Dir(dir).Ledgers(), "clitest.jsonl")
	if sum.Ledger != want {
		t.Errorf("ledger at %s, want %s", sum.Ledger, want)
	}
	l, err := load.ReadLedger(want)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Complete() || l.Header.Scenario != "smoke" || len(l.Entries) == 0 || len(l.Entries) >= 20 {
		t.Errorf("ledger: complete=%v header=%+v entries=%d (smoke mixes ratings with reads)", l.Complete(), l.Header, len(l.Entries))
	}
	for _, e := range l.Entries {
		if e.Variant != "rpc" || !strings.HasPrefix(e.RequestID, "clitest-rpc-") {
			t.Errorf("entry %+v", e)
		}
	}
	// The same run id twice would reuse request ids the services dedupe.
	if _, _, err := runLab(t, dir, "load", "--scenario", "smoke", "--variants", "rpc", "--target", "rpc="+rpc.URL,
		"--metrics-listen", "off", "--run-id", "clitest", "--quiet"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("a second run with the same --run-id: want an error, got %v", err)
	}
}

func TestLoadRefusesBadInputBeforeSendingAnything(t *testing.T) {
	rpc, got := ratingsAPI(t)
	cases := map[string][]string{
		"--rate":               {"--rate", "0"},
		"must be > 0":          {"--rate", "-10/s"},
		`unknown variant "x"`:  {"--variants", "rpc,x"},
		"unknown scenario":     {"--scenario", "nope"},
		"--force":              {"--duration", "1h"},
		"--seed":               {"--seed", "seven"},
		"unreachable":          {"--variants", "stream", "--target", "stream=http://127.0.0.1:1"},
		"--target":             {"--target", "rpc"},
		"--duration 0s":        {"--duration", "0s"},
		"nor among --variants": {"--target", "rcp=http://127.0.0.1:1"},
		"--retries: want 0 to 10 retries, got 11":    {"--retries", "11"},
		"--retry-backoff: want 1ms to 10s, got 1m0s": {"--retries", "2", "--retry-backoff", "1m"},
	}
	for want, args := range cases {
		t.Run(want, func(t *testing.T) {
			dir := t.TempDir()
			base := []string{"load", "--target", "rpc=" + rpc.URL, "--metrics-listen", "off", "--quiet"}
			if !strings.Contains(strings.Join(args, " "), "--variants") {
				base = append(base, "--variants", "rpc")
			}
			_, _, err := runLab(t, dir, append(base, args...)...)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("want an error mentioning %q, got %v", want, err)
			}
			if _, err := os.Stat(layout.Dir(dir).Ledgers()); err == nil {
				t.Error("a refused run must not write anything")
			}
		})
	}
	if got.Load() != 0 {
		t.Errorf("refused runs sent %d requests", got.Load())
	}
}

// Client metrics served beyond loopback are a choice the user must see.
func TestMetricsListenBeyondLoopbackWarns(t *testing.T) {
	for addr, warns := range map[string]bool{"0.0.0.0:0": true, ":0": true, "127.0.0.1:0": false, "localhost:0": false} {
		var out strings.Builder
		stop, err := serveLoadMetrics(addr, "127.0.0.1:0", prometheus.NewRegistry(), &out)
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		stop()
		if got := strings.Contains(out.String(), "warning: --metrics-listen "+addr); got != warns {
			t.Errorf("--metrics-listen %s: warned %v (%q), want %v", addr, got, out.String(), warns)
		}
	}
}
