package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/faults"
	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/lab/supervisor"
)

// A heal that finished well after its planned end (Toxiproxy's toxic
// removal can take its 5 s write timeout) is said so on the progress
// line, and the journal keeps when it really happened.
func TestALateHealIsSaidSoAndRecordedWhenItHappened(t *testing.T) {
	planned := time.Date(2026, 12, 7, 15, 12, 2, 0, time.UTC)
	healed := map[string]faults.Fault{
		"f-9":  {ID: "f-9", State: faults.StateHealed, HealsAt: planned, HealedAt: planned.Add(5006 * time.Millisecond)},
		"f-10": {ID: "f-10", State: faults.StateHealed, HealsAt: planned, HealedAt: planned.Add(time.Millisecond)},
	}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := healed[strings.TrimPrefix(r.URL.Path, "/v1/faults/")]
		if r.Method != http.MethodGet || !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(f)
	}))
	defer api.Close()

	var out bytes.Buffer
	r := &run{env: Env{Out: &out, Faults: faults.NewClient(supervisor.NewClient(strings.TrimPrefix(api.URL, "http://")))},
		t0: planned.Add(-time.Minute), active: map[string]string{"m2": "movies-latency"}, injected: map[string]bool{},
		events: map[string]*journal.FaultEvent{"m2/rpc": {ID: "m2", Variant: "rpc"}, "m2/stream": {ID: "m2", Variant: "stream"}}}
	r.heal(context.Background(), PlannedStep{ID: "m2", Fault: "movies-latency"}, map[string][]faults.Fault{
		"rpc": {{ID: "f-9", State: faults.StateActive}}, "stream": {{ID: "f-10", State: faults.StateActive}},
	})

	if want := "healed m2 movies-latency (rpc 5.0 s after its planned end; the journal records when)"; !strings.Contains(out.String(), want) {
		t.Fatalf("progress %q, want it to contain %q", out.String(), want)
	}
	if got := r.events["m2/rpc"].HealedAt; !got.Equal(healed["f-9"].HealedAt) {
		t.Fatalf("the journal's heal time for rpc is %v, want %v", got, healed["f-9"].HealedAt)
	}
	if !r.injected["f-9"] || !r.injected["f-10"] {
		t.Fatalf("healed faults not marked healed: %v", r.injected)
	}
}
