package e2e

import (
	"fmt"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/services/model"
)

func postRating(t *testing.T, base string, movie int64, rating float64, requestID string) (int, time.Duration) {
	t.Helper()
	body := map[string]any{"movie_id": movie, "rating": rating, "user_id": 42}
	if requestID != "" {
		body["request_id"] = requestID
	}
	start := time.Now()
	code, err := labtest.HTTPJSON(http.MethodPost, base+"/api/ratings", body, nil)
	if err != nil {
		t.Fatalf("POST rating: %v", err)
	}
	return code, time.Since(start)
}

func getMovie(t *testing.T, base string, id int64) model.RatedMovie {
	t.Helper()
	var m model.RatedMovie
	if code, err := labtest.HTTPJSON(http.MethodGet, fmt.Sprintf("%s/api/movies/%d", base, id), nil, &m); err != nil || code != http.StatusOK {
		t.Fatalf("GET movie %d: %d %v", id, code, err)
	}
	return m
}

// Ratings posted to the RPC webserver are counted exactly, and a retried
// request id is applied once.
func TestRPCExactAverages(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	t.Parallel()
	l := labtest.Start(t)
	base := "http://" + l.Ports.WebserverRPC()
	for i, r := range []float64{7, 8, 9.5} {
		if code, _ := postRating(t, base, 5, r, fmt.Sprintf("exact-%d", i)); code != http.StatusCreated {
			t.Fatalf("POST rating %v: status %d, want 201", r, code)
		}
	}
	if code, _ := postRating(t, base, 5, 7, "exact-0"); code/100 != 2 {
		t.Fatalf("retry of a request id: status %d", code)
	}
	m := getMovie(t, base, 5)
	if m.Count != 3 || m.SumTenths != 245 || math.Abs(m.Average-24.5/3) > 1e-9 {
		t.Fatalf("movie 5 = %+v, want count 3, sum 24.5, average %.4f", m, 24.5/3)
	}
	if code, _ := postRating(t, base, 999999, 5, ""); code != http.StatusUnprocessableEntity {
		t.Fatalf("unknown movie: status %d, want 422", code)
	}
}

// With breakers on, a hung movies service makes POSTs fail fast once the
// breaker opens; when it comes back the breaker half-opens, closes, and POSTs
// succeed again.
func TestRPCBreakerOpensAndRecovers(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	t.Parallel()
	l := labtest.Start(t)
	base := "http://" + l.Ports.WebserverRPC()
	if code, _ := postRating(t, base, 7, 8, ""); code != http.StatusCreated {
		t.Fatalf("baseline POST: %d", code)
	}
	l.Action("movies-rpc", "pause") // SIGSTOP: calls hang until their timeout

	var fast time.Duration
	labtest.Eventually(t, 30*time.Second, "POSTs failing fast with 503", func() error {
		code, took := postRating(t, base, 8, 6, "")
		if code != http.StatusServiceUnavailable {
			return fmt.Errorf("status %d, want 503", code)
		}
		if took > 100*time.Millisecond {
			return fmt.Errorf("503 took %v: breaker not open yet", took)
		}
		fast = took
		return nil
	})
	t.Logf("with the breaker open a POST fails in %v", fast)

	l.Action("movies-rpc", "resume")
	labtest.Eventually(t, 30*time.Second, "POSTs succeeding after recovery", func() error {
		if code, _ := postRating(t, base, 9, 6, ""); code != http.StatusCreated {
			return fmt.Errorf("status %d", code)
		}
		return nil
	})
}

// With breakers off, every POST during the outage waits for the full timeout:
// the naked cascade.
func TestRPCBreakersOffTakeTheFullTimeout(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	t.Parallel()
	l := labtest.Start(t, "--breakers=off")
	base := "http://" + l.Ports.WebserverRPC()
	l.Action("movies-rpc", "pause")
	for i := 0; i < 8; i++ {
		code, took := postRating(t, base, 8, 6, "")
		if code != http.StatusServiceUnavailable {
			t.Fatalf("POST %d during outage: status %d, want 503", i, code)
		}
		if took < 450*time.Millisecond {
			t.Fatalf("POST %d failed after %v; without breakers it should wait for the 500ms timeout", i, took)
		}
	}
	l.Action("movies-rpc", "resume")
	labtest.Eventually(t, 10*time.Second, "POSTs succeeding", func() error {
		if code, _ := postRating(t, base, 9, 6, ""); code != http.StatusCreated {
			return fmt.Errorf("status %d", code)
		}
		return nil
	})
}
