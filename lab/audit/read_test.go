package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/load/ledger"
	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/services/model"
	ratingsrpc "github.com/ratingslab/lab/services/ratings/rpc"
	ratingsstream "github.com/ratingslab/lab/services/ratings/stream"
)

func TestReadStoreReadsRatingsRPCsSQLiteAndItsAppliedRequests(t *testing.T) {
	dir := layout.Dir(t.TempDir())
	store, err := ratingsrpc.OpenStore(dir.Data("ratings-rpc"), ratingsrpc.SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	movie := model.Movie{ID: 3, Title: "The General", ReleaseYear: 1926}
	for i, tenths := range []int64{70, 85} {
		if _, err := store.Apply(ctx, model.Rating{RequestID: fmt.Sprintf("r-%d", i), MovieID: 3, Tenths: tenths}, movie); err != nil {
			t.Fatal(err)
		}
	}
	// The service keeps running (and writing) while the audit reads.
	s := ReadStore(ctx, dir, VariantRPC)
	if s.Error != "" {
		t.Fatal(s.Error)
	}
	if len(s.Movies) != 1 || s.Movies[0] != (MovieState{MovieID: 3, Count: 2, SumTenths: 155}) {
		t.Errorf("movies = %+v", s.Movies)
	}
	applied, err := ReadRPCApplied(ctx, RPCStorePath(dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != 2 || applied["r-1"] != (AppliedRequest{MovieID: 3, SumTenths: 85}) {
		t.Errorf("applied = %+v", applied)
	}
}

func TestReadStoreSaysWhichStoreIsMissingAndCreatesNothing(t *testing.T) {
	dir := layout.Dir(t.TempDir())
	for _, v := range []string{VariantRPC, VariantStream} {
		s := ReadStore(context.Background(), dir, v)
		if s.Error == "" || len(s.Movies) != 0 {
			t.Errorf("%s: want an error, got %+v", v, s)
		}
		t.Logf("%s: %s", v, s.Error)
	}
	if _, err := os.Stat(RPCStorePath(dir)); !os.IsNotExist(err) {
		t.Errorf("reading created %s", RPCStorePath(dir))
	}
}

// streamSchema is ratings-stream's aggregates table (services/ratings/stream/store.go).
const streamSchema = `CREATE TABLE aggregates (
	movie_id INTEGER PRIMARY KEY, partition INTEGER NOT NULL, count INTEGER NOT NULL,
	sum_tenths INTEGER NOT NULL, source_offset INTEGER NOT NULL, last_event_ns INTEGER NOT NULL)`

func writeStreamStore(t *testing.T, dir string, rows ...[4]int64) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, ratingsstream.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(streamSchema); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows { // movie, count, sum, source offset
		if _, err := db.Exec(`INSERT INTO aggregates VALUES (?, 0, ?, ?, ?, 0)`, r[0], r[1], r[2], r[3]); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadStoreTakesTheMostAdvancedAggregateAcrossStreamReplicas(t *testing.T) {
	dir := layout.Dir(t.TempDir())
	// Replica 1 owned movie 5 until offset 10, then replica 2 took over
	// and has it up to offset 14; replica 1 keeps its stale row.
	writeStreamStore(t, dir.Data(parts.InstanceName("ratings-stream", 0)), [4]int64{5, 3, 210, 10}, [4]int64{8, 1, 40, 2})
	writeStreamStore(t, dir.Data(parts.InstanceName("ratings-stream", 1)), [4]int64{5, 4, 290, 14})
	s := ReadStore(context.Background(), dir, VariantStream)
	if s.Error != "" {
		t.Fatal(s.Error)
	}
	want := []MovieState{{MovieID: 5, Count: 4, SumTenths: 290}, {MovieID: 8, Count: 1, SumTenths: 40}}
	if fmt.Sprint(s.Movies) != fmt.Sprint(want) {
		t.Errorf("movies = %+v, want %+v", s.Movies, want)
	}
}

func TestReadAPIPagesThroughThePublicAPI(t *testing.T) {
	// A server shaped like the public API: 1200 movies, every third rated,
	// pages of at most 500.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/movies", func(w http.ResponseWriter, r *http.Request) {
		off, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		lim, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		lim = min(lim, 500)
		var page struct {
			Movies []model.RatedMovie `json:"movies"`
			Total  int                `json:"total"`
		}
		page.Total = 1200
		for id := off + 1; id <= min(off+lim, 1200); id++ {
			cs := model.CountAndSum{}
			if id%3 == 0 {
				cs = model.CountAndSum{Count: 2, SumTenth: 150}
			}
			page.Movies = append(page.Movies, model.NewRatedMovie(model.Movie{ID: int64(id)}, cs))
		}
		json.NewEncoder(w).Encode(page)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	s := ReadAPI(context.Background(), srv.Client(), VariantRPC, srv.URL)
	if s.Error != "" {
		t.Fatal(s.Error)
	}
	if len(s.Movies) != 400 || s.Movies[0] != (MovieState{MovieID: 3, Count: 2, SumTenths: 150}) || s.Movies[399].MovieID != 1200 {
		t.Errorf("got %d movies, first %+v", len(s.Movies), s.Movies[:1])
	}

	down := ReadAPI(context.Background(), srv.Client(), VariantRPC, "http://127.0.0.1:1")
	if down.Error == "" {
		t.Error("unreachable API: want an error")
	}
}

// TestCheckNeverAccusesAHonestVariant applies a random ledger the way a
// correct variant would (every acknowledged rating once, each ambiguous one
// or not) and demands a clean audit; then breaks it in ways a count can see
// and demands a finding.
func TestCheckNeverAccusesAHonestVariant(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	outcomes := []ledger.Outcome{ledger.Acknowledged, ledger.Acknowledged, ledger.Acknowledged, ledger.Ambiguous, ledger.Failed, ledger.Rejected}
	for round := range 200 {
		var es []ledger.Entry
		state := map[int64]MovieState{}
		base := map[int64]MovieState{}
		for m := int64(1); m <= 5; m++ {
			b := MovieState{MovieID: m, Count: int64(rng.IntN(3))}
			b.SumTenths = b.Count * 50
			base[m], state[m] = b, b
		}
		for i := range 40 {
			e := ledger.Entry{RequestID: fmt.Sprintf("r-%d", i), Variant: "rpc", MovieID: int64(1 + rng.IntN(5)),
				RatingTenths: int64(10 + rng.IntN(91)), Outcome: outcomes[rng.IntN(len(outcomes))], Cause: "5xx"}
			es = append(es, e)
			if e.Outcome == ledger.Acknowledged || e.Outcome == ledger.Ambiguous && rng.IntN(2) == 0 {
				s := state[e.MovieID]
				s.Count++
				s.SumTenths += e.RatingTenths
				state[e.MovieID] = s
			}
		}
		toSnap := func(m map[int64]MovieState) Snapshot {
			s := Snapshot{Variant: "rpc", Source: SourceAPI}
			for id := int64(1); id <= 5; id++ {
				s.Movies = append(s.Movies, m[id])
			}
			return s
		}
		r := Check("rpc", es, toSnap(base), toSnap(state))
		if !r.OK {
			t.Fatalf("round %d: honest variant accused: %+v", round, r.Movies)
		}
		// Drop an acknowledged rating: the count (or, when an ambiguous
		// one hides it, the sum) has to show it.
		for _, e := range es {
			if e.Outcome != ledger.Acknowledged {
				continue
			}
			s := state[e.MovieID]
			s.Count--
			s.SumTenths -= e.RatingTenths
			broken := map[int64]MovieState{}
			for k, v := range state {
				broken[k] = v
			}
			broken[e.MovieID] = s
			r := Check("rpc", es, toSnap(base), toSnap(broken))
			if r.OK && r.AmbiguousApplied == 0 {
				t.Fatalf("round %d: a lost acknowledged rating went unnoticed", round)
			}
			break
		}
	}
}
