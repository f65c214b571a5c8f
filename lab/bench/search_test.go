package bench

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// runSearch plays a search against a system that holds every rate up to limit.
func runSearch(cfg SearchConfig, limit float64) (best float64, rates []float64, bounded bool) {
	s := NewSearch(cfg)
	for {
		r, ok := s.Next()
		if !ok {
			return s.Best(), rates, s.Bounded()
		}
		rates = append(rates, r)
		s.Record(r, r <= limit)
	}
}

func TestSearchClimbsThenBisectsToPrecision(t *testing.T) {
	best, rates, bounded := runSearch(SearchConfig{Start: 200, Factor: 2, Precision: 0.1, MaxSteps: 20}, 1130)
	if !bounded {
		t.Fatalf("a rate not held was found, but the search says unbounded (rates %v)", rates)
	}
	if best > 1130 || best < 1130/1.1 {
		t.Fatalf("best %v: want within 10%% below 1130 (rates %v)", best, rates)
	}
	want := []float64{200, 400, 800, 1600, 1200}
	for i, r := range want {
		if rates[i] != r {
			t.Fatalf("rates %v: want to start %v", rates, want)
		}
	}
}

func TestSearchGoesDownWhenTheFirstStepFails(t *testing.T) {
	best, rates, _ := runSearch(SearchConfig{Start: 800, Factor: 2, Precision: 0.1, MaxSteps: 20}, 130)
	if best > 130 || best < 130/1.1 {
		t.Fatalf("best %v: want within 10%% below 130 (rates %v)", best, rates)
	}
}

func TestSearchEndsWhenNothingHolds(t *testing.T) {
	best, rates, _ := runSearch(SearchConfig{Start: 200, Factor: 2, Precision: 0.1, MaxSteps: 20}, 0)
	if best != 0 || len(rates) > 6 {
		t.Fatalf("best %v after %v: want 0 after a few halvings down to the quantum", best, rates)
	}
}

func TestSearchStopsAtMaxStepsAndSaysItIsOnlyALowerBound(t *testing.T) {
	best, rates, bounded := runSearch(SearchConfig{Start: 100, Factor: 2, Precision: 0.1, MaxSteps: 3}, 1e9)
	if len(rates) != 3 || best != 400 || bounded {
		t.Fatalf("rates %v best %v bounded %v: want 3 steps, best 400, unbounded", rates, best, bounded)
	}
}

func TestHopsPassTheBodyOnAndAnswerTheirStatus(t *testing.T) {
	var got string
	last := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 100)
		n, _ := r.Body.Read(buf)
		got = r.URL.Path + " " + string(buf[:n])
	}))
	defer last.Close()
	first := httptest.NewServer(HopHandler(last.URL, 202, 0))
	defer first.Close()
	resp, err := http.Post(first.URL+"/api/ratings", "application/json", strings.NewReader(`{"movie_id":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 || got != `/api/ratings {"movie_id":1}` {
		t.Fatalf("status %d, next hop saw %q", resp.StatusCode, got)
	}
	last.Close()
	resp, err = http.Post(first.URL+"/api/ratings", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("next hop gone: status %d, want 502", resp.StatusCode)
	}
}

func TestProcCPUReadsThisProcess(t *testing.T) {
	x := 0
	for i := 0; i < 50_000_000; i++ {
		x += i % 7
	}
	d, err := ProcCPU(os.Getpid())
	if err != nil || d <= 0 || x == 0 {
		t.Fatalf("ProcCPU(self) = %v, %v; want > 0", d, err)
	}
	if _, err := ProcCPU(1 << 30); err == nil {
		t.Fatal("a pid that does not exist: want an error")
	}
	if LoadAverage() < 0 {
		t.Fatal("LoadAverage: unreadable /proc/loadavg")
	}
}

func TestRunHopRefusesNonLoopbackAndBadStatus(t *testing.T) {
	if err := RunHop(t.Context(), "0.0.0.0:0", "", 201, io.Discard); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("0.0.0.0: %v", err)
	}
	if err := RunHop(t.Context(), "127.0.0.1:0", "", 500, io.Discard); err == nil || !strings.Contains(err.Error(), "2xx") {
		t.Fatalf("status 500: %v", err)
	}
}
