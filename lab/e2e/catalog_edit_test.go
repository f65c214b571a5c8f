package e2e

import (
	"regexp"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/lab/labtest"
)

// Movies outage with a catalog edit during it (experiments/
// movies-catalog-edit.yaml at half its length), on both variants of one
// real lab: the movie is added to the legacy catalog while movies-rpc and
// movies-connect are down, and the load rates it from then on. Asserted
// are the mechanisms, never a tuned outcome: the stream variant refuses
// the new movie (422) and takes its ratings only after movies-connect is
// back; the RPC variant fails them (5xx, or no answer) and never refuses
// one, and takes them after movies-rpc is back; neither loses, doubles or
// applies a refused rating.
func TestMoviesCatalogEditExperiment(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	l := labtest.Start(t, "--no-prometheus")
	waitAllHealthy(t, l)
	out, _ := l.Run("chaos", "run", shortened(t, "movies-catalog-edit", 0.5), "--quiet") // a hypothesis may fail: the figures are what is checked
	m := regexp.MustCompile(`Journal: (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("lab chaos run: no journal:\n%s", out)
	}
	j, err := journal.Read(m[1])
	if err != nil {
		t.Fatal(err)
	}
	if j.Error != "" {
		t.Fatalf("run error: %s\n%s", j.Error, out)
	}
	defer func() {
		if t.Failed() {
			t.Logf("lab chaos run:\n%s", out)
		}
	}()
	if len(j.CatalogEdits) != 1 {
		t.Fatalf("journal: %d catalog edits, want 1", len(j.CatalogEdits))
	}
	ce := j.CatalogEdits[0]
	if ce.Error != "" || ce.AddedAt.IsZero() || ce.MovieID == 0 {
		t.Fatalf("the movie was not added: %+v", ce)
	}
	// When each variant's movies part was started again (the heal began;
	// the journal's heal time is when it was healthy, a moment later).
	back := map[string]time.Time{}
	for _, f := range j.Faults {
		back[f.Variant] = f.InjectedAt.Add(f.PlannedFor.D())
		if !ce.AddedAt.After(f.InjectedAt) || !ce.AddedAt.Before(back[f.Variant]) {
			t.Errorf("movie added at %v, want it inside the %s outage (%v to %v)", ce.AddedAt, f.Variant, f.InjectedAt, back[f.Variant])
		}
	}
	// Both variants got the very same ratings of the new movie.
	figures := map[string]journal.CatalogConvergence{}
	for _, v := range ce.Variants {
		figures[v.Variant] = v
		t.Logf("%s: %d ratings of movie %d: %d taken, %d refused (%d late), %d failed, %d ambiguous; converged %v after the edit, %v after the heal",
			v.Variant, v.Sent, ce.MovieID, v.Acknowledged, v.Refused, v.RefusedLate, v.Failed, v.Ambiguous, v.AfterEdit, v.AfterHeal)
	}
	rpc, stream := figures["rpc"], figures["stream"]
	if rpc.Sent == 0 || rpc.Sent != stream.Sent {
		t.Errorf("ratings of the new movie: rpc %d, stream %d; want the same, more than 0", rpc.Sent, stream.Sent)
	}
	// Stream: refused while movies-connect was down, taken after it came back.
	if stream.Refused == 0 || stream.Acknowledged == 0 {
		t.Errorf("stream: %d refused, %d taken; want refusals during the outage, then ratings taken", stream.Refused, stream.Acknowledged)
	}
	if stream.Converged == nil || !stream.Converged.After(back["stream"]) {
		t.Errorf("stream converged at %v; want after movies-connect was started again (%v)", stream.Converged, back["stream"])
	}
	// RPC: failed while movies-rpc was down, never refused (movies-rpc reads
	// the catalog itself), taken after it came back.
	if rpc.Failed+rpc.Ambiguous == 0 || rpc.Refused != 0 || rpc.Acknowledged == 0 {
		t.Errorf("rpc: %d failed, %d ambiguous, %d refused, %d taken; want failures, no refusal, then ratings taken", rpc.Failed, rpc.Ambiguous, rpc.Refused, rpc.Acknowledged)
	}
	if rpc.Converged == nil || !rpc.Converged.After(back["rpc"]) {
		t.Errorf("rpc converged at %v; want after movies-rpc was started again (%v)", rpc.Converged, back["rpc"])
	}
	// Nothing acknowledged lost or doubled, no refused rating applied, in
	// either variant, through either source.
	if len(j.Audit) == 0 {
		t.Fatal("no audit in the journal")
	}
	for _, a := range j.Audit {
		if !a.Checked || a.Lost != 0 || a.Duplicates != 0 || a.Phantoms != 0 {
			t.Errorf("audit %s (%s): checked %v, lost %d, duplicates %d, phantoms %d: %s", a.Variant, a.Source, a.Checked, a.Lost, a.Duplicates, a.Phantoms, a.Error)
		}
	}
	// The refusals the stream variant owed are not failures of it: its
	// success rate while the fault lasted counts them as expected.
	if d, ok := j.FindClient("stream", journal.WindowDuring); ok && d.All.SuccessRatio != nil && *d.All.SuccessRatio < 0.9 {
		t.Errorf("stream's success ratio during the outage %.3f: its owed refusals were counted as failures", *d.All.SuccessRatio)
	}
}
