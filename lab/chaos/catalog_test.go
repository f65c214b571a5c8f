package chaos

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/lab/load/ledger"
	"github.com/ratingslab/lab/services/model"
)

// The catalog edit's figures come from the ledger alone: convergence at the
// first 2xx answer, refusals split at it, failures and ambiguous apart, the
// time after the heal measured from the fault as applied.
func TestCatalogEditFiguresComeFromTheLedger(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	p := &Plan{Variants: []string{"rpc", "stream"}, Steps: []PlannedStep{{ID: "m1", At: 5 * time.Second, For: 10 * time.Second}}}
	action := &PlannedAction{ID: "m2", Action: ActionMovieAdd, At: 7 * time.Second, RefuseUntil: 25 * time.Second, Movie: model.Movie{Title: "New"}}
	r := &run{p: p, t0: t0, catalog: &catalogRun{action: action, added: model.Movie{ID: 181, Title: "New"}, addedAt: at(7)}}
	entry := func(v string, sent, latency float64, o ledger.Outcome) ledger.Entry {
		e := ledger.Entry{Variant: v, NewMovie: true, MovieID: 181, SentAt: at(sent), LatencyNs: time.Duration(latency * float64(time.Second)), Outcome: o, Expected: ledger.Acknowledged}
		if o == ledger.Rejected {
			e.Expected = ledger.Rejected // as the load generator judged it
		}
		return e
	}
	entries := []ledger.Entry{
		{Variant: "stream", MovieID: 3, SentAt: at(8), Outcome: ledger.Rejected}, // another movie: not counted
		entry("stream", 8, 0, ledger.Rejected),
		entry("stream", 15.5, 0.5, ledger.Acknowledged), // answered at 16 s: converged
		entry("stream", 15.8, 0, ledger.Rejected),       // sent before that answer: owed
		entry("stream", 17, 0, ledger.Rejected),         // after: late
		entry("stream", 18, 0, ledger.Acknowledged),
		entry("rpc", 8, 0, ledger.Failed),
		entry("rpc", 9, 2, ledger.Ambiguous),
		entry("rpc", 15.2, 0.1, ledger.Acknowledged),
	}
	events := []journal.FaultEvent{{ID: "m1", Variant: "rpc", HealedAt: at(15)}, {ID: "m1", Variant: "stream", HealedAt: at(15)}}
	got := r.catalogEdits(entries, events)
	if len(got) != 1 || got[0].MovieID != 181 || got[0].Error != "" {
		t.Fatalf("catalog edits: %+v", got)
	}
	byVariant := map[string]journal.CatalogConvergence{}
	for _, v := range got[0].Variants {
		byVariant[v.Variant] = v
	}
	s, rpc := byVariant["stream"], byVariant["rpc"]
	if s.Sent != 5 || s.Acknowledged != 2 || s.Refused != 3 || s.RefusedLate != 1 || s.Failed != 0 {
		t.Errorf("stream: %+v", s)
	}
	if s.AfterEdit == nil || s.AfterEdit.D() != 9*time.Second || s.AfterHeal == nil || s.AfterHeal.D() != time.Second {
		t.Errorf("stream converged %v after the edit, %v after the heal; want 9s and 1s", s.AfterEdit, s.AfterHeal)
	}
	if rpc.Sent != 3 || rpc.Failed != 1 || rpc.Ambiguous != 1 || rpc.Refused != 0 || rpc.AfterHeal == nil || rpc.AfterHeal.D() != 300*time.Millisecond {
		t.Errorf("rpc: %+v (after heal %v)", rpc, rpc.AfterHeal)
	}
	// The terminal shows them as a table, a column per variant.
	var out bytes.Buffer
	printCatalogEdits(&out, journal.Journal{Started: t0, CatalogEdits: got})
	for _, want := range []string{`Catalog edit m2: movie 181 "New" added at +7s`, "RPC", "STREAM", "catalog convergence (edit → first 2xx for it)  8.3s", "refused when not owed: failures              0      1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, out.String())
		}
	}
}
