package load

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testAPI is a stand-in for a webserver variant with the public API's shape
// and status codes, plus hooks to misbehave. It records what reached it.
type testAPI struct {
	*httptest.Server
	// behave, if set, may answer a rating itself (return true when it did).
	behave func(w http.ResponseWriter, r *http.Request, body ratingBody) bool
	// before, if set, runs for every API request with its 1-based arrival number.
	before func(w http.ResponseWriter, r *http.Request, n int64)

	arrivals atomic.Int64
	inFlight atomic.Int64
	maxIn    atomic.Int64

	mu      sync.Mutex
	ratings map[string]ratingBody // by request id
	gets    []string              // paths of GETs, in arrival order
}

type ratingBody struct {
	RequestID string  `json:"request_id"`
	MovieID   int64   `json:"movie_id"`
	UserID    int64   `json:"user_id"`
	Rating    float64 `json:"rating"`
}

func newTestAPI(t *testing.T) *testAPI {
	a := &testAPI{ratings: map[string]ratingBody{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"status":"ok"}`))
	})
	mux.HandleFunc("POST /api/ratings", func(w http.ResponseWriter, r *http.Request) {
		var b ratingBody
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			http.Error(w, `{"error":"bad json"}`, http.StatusBadRequest)
			return
		}
		a.mu.Lock()
		a.ratings[b.RequestID] = b
		a.mu.Unlock()
		if a.behave != nil && a.behave(w, r, b) {
			return
		}
		if b.MovieID >= UnknownMovieBase {
			w.WriteHeader(http.StatusUnprocessableEntity)
			w.Write([]byte(`{"error":"unknown movie"}`))
			return
		}
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"request_id": b.RequestID, "movie_id": b.MovieID})
	})
	get := func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.gets = append(a.gets, r.URL.RequestURI())
		a.mu.Unlock()
		if id, err := strconv.ParseInt(r.PathValue("id"), 10, 64); err == nil && id >= UnknownMovieBase {
			http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
			return
		}
		w.Write([]byte(`{"movies":[],"total":0}`))
	}
	mux.HandleFunc("GET /api/movies", get)
	mux.HandleFunc("GET /api/movies/{id}", get)
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			n := a.arrivals.Add(1)
			in := a.inFlight.Add(1)
			defer a.inFlight.Add(-1)
			for m := a.maxIn.Load(); in > m && !a.maxIn.CompareAndSwap(m, in); m = a.maxIn.Load() {
			}
			if a.before != nil {
				a.before(w, r, n)
			}
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *testAPI) received() map[string]ratingBody {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]ratingBody, len(a.ratings))
	for k, v := range a.ratings {
		out[k] = v
	}
	return out
}

// refusedURL is a loopback address nothing listens on.
func refusedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// seqOfID is the sequence number at the end of a request id.
func seqOfID(t *testing.T, id string) uint64 {
	t.Helper()
	i := strings.LastIndexByte(id, '-')
	n, err := strconv.ParseUint(id[i+1:], 10, 64)
	if err != nil {
		t.Fatalf("request id %q does not end in a sequence number", id)
	}
	return n
}

// atomic64Time is a time settable from one goroutine and read from others.
type atomic64Time struct{ ns atomic.Int64 }

func (a *atomic64Time) set(t time.Time) { a.ns.Store(t.UnixNano()) }
func (a *atomic64Time) get() time.Time {
	if n := a.ns.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}
