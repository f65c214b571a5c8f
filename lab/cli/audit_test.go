package cli

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/load/ledger"
	"github.com/ratingslab/lab/services/model"
	ratingsrpc "github.com/ratingslab/lab/services/ratings/rpc"
	"github.com/ratingslab/lab/services/webserver"
)

// labCommand runs the lab command line in-process against a state dir.
func labCommand(dir string, args ...string) (string, error) {
	var out, errOut bytes.Buffer
	err := Run(context.Background(), append([]string{"lab", "--dir", dir}, args...), func(string) string { return "" }, &out, &errOut)
	return out.String() + errOut.String(), err
}

// storeBackend serves the public API's reads from ratings-rpc's store, so
// the test has the real API handler over the real store without the rest
// of the RPC chain.
type storeBackend struct{ s *ratingsrpc.Store }

func (b storeBackend) Rate(context.Context, model.Rating) error { return errors.New("read only") }
func (b storeBackend) Movies(ctx context.Context, offset, limit int) ([]model.RatedMovie, int, error) {
	return b.s.RatedMovies(ctx, offset, limit)
}
func (b storeBackend) Movie(ctx context.Context, id int64) (model.RatedMovie, error) {
	rm, ok, err := b.s.RatedMovie(ctx, id)
	if err == nil && !ok {
		err = webserver.ErrNotFound
	}
	return rm, err
}
func (b storeBackend) Ready(context.Context) error { return nil }

func TestAuditCommandFindsAPhantomAndNamesIt(t *testing.T) {
	dir := t.TempDir()
	ldir := layout.Dir(dir)
	store, err := ratingsrpc.OpenStore(ldir.Data("ratings-rpc"), ratingsrpc.SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	api := httptest.NewServer(webserver.New(storeBackend{store}, webserver.Options{Variant: "rpc"}, nil))
	defer api.Close()
	ctx := context.Background()
	movie := model.Movie{ID: 4, Title: "Metropolis", ReleaseYear: 1927}
	apply := func(id string, tenths int64) {
		if _, err := store.Apply(ctx, model.Rating{RequestID: id, MovieID: 4, Tenths: tenths}, movie); err != nil {
			t.Fatal(err)
		}
	}

	// A rating from before the run, then the baseline.
	apply("before-1", 90)
	baseline := filepath.Join(dir, "before.json")
	if out, err := labCommand(dir, "audit", "snapshot", "--variants", "rpc", "--api", "rpc="+api.URL, "--out", baseline); err != nil {
		t.Fatalf("snapshot: %v\n%s", err, out)
	}

	// The run: two acknowledged, one that timed out, one answered 503 —
	// all four applied by ratings-rpc.
	if err := os.MkdirAll(ldir.Ledgers(), 0o755); err != nil {
		t.Fatal(err)
	}
	lpath := filepath.Join(ldir.Ledgers(), "run.jsonl")
	w, err := ledger.Create(lpath, ledger.Header{RunID: "run", Variants: []string{"rpc"}, Targets: map[string]string{"rpc": api.URL}, StartedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range []struct {
		id      string
		tenths  int64
		outcome ledger.Outcome
		cause   string
	}{{"r-1", 70, ledger.Acknowledged, ""}, {"r-2", 80, ledger.Acknowledged, ""}, {"r-3", 55, ledger.Ambiguous, "timeout"}, {"r-4", 30, ledger.Failed, "5xx"}} {
		apply(e.id, e.tenths)
		if err := w.Record(ledger.Entry{RequestID: e.id, Variant: "rpc", Seq: uint64(i), MovieID: 4, RatingTenths: e.tenths, Outcome: e.outcome, Cause: e.cause}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(time.Now(), false); err != nil {
		t.Fatal(err)
	}

	out, err := labCommand(dir, "audit", "--baseline", baseline) // the newest ledger
	if !errors.Is(err, errAuditFailed) {
		t.Fatalf("want the audit to fail, got %v\n%s", err, out)
	}
	for _, want := range []string{"run.jsonl", "FAIL", "phantom: r-4", "ambiguous applied 1 of 1", "movie 4: count 5 (ledger allows 3..4)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Without the baseline, the rating from before the run is an extra
	// write and the output says why it may be.
	out, _ = labCommand(dir, "audit", "--ledger", lpath, "--json")
	if !strings.Contains(out, "no baseline") {
		t.Errorf("want a note about the missing baseline:\n%s", out)
	}
}

func TestAuditCommandRejectsBadInputByName(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"version": 1, "kind": "experiment",`), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"audit", filepath.Join(dir, "none.json")}, "none.json: no such file"},
		{[]string{"audit", bad}, "bad.json: corrupt JSON"},
		{[]string{"audit", "--stored"}, "--stored: needs a JOURNAL"},
		{[]string{"audit"}, "--ledger: no files in"},
		{[]string{"audit", "--ledger", filepath.Join(dir, "nope.jsonl")}, "nope.jsonl"},
		{[]string{"audit", "--ledger", bad, "--baseline", bad}, "--baseline " + bad},
	} {
		out, err := labCommand(dir, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("lab %s: error %v, want %q\n%s", strings.Join(c.args, " "), err, c.want, out)
		}
	}
}

func TestReportCommandPrintsWhereTheReportIs(t *testing.T) {
	dir := t.TempDir()
	fixture, _ := filepath.Abs("../report/testdata/journal.json")
	journals := layout.Dir(dir).Journals()
	os.MkdirAll(journals, 0o755)
	data, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(journals, "cut.json"), data, 0o644)

	out, err := labCommand(dir, "report") // the newest journal
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := filepath.Join(journals, "cut.report", "index.html")
	if !strings.Contains(out, want) {
		t.Errorf("output %q does not name %s", out, want)
	}
	if _, err := os.Stat(want); err != nil {
		t.Error(err)
	}
	outDir := filepath.Join(dir, "cmp")
	if out, err := labCommand(dir, "report", "--compare", fixture, filepath.Join(journals, "cut.json"), "--out", outDir); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(outDir, "index.html")); err != nil {
		t.Error(err)
	}
	if _, err := labCommand(dir, "report", fixture, fixture); err == nil || !strings.Contains(err.Error(), "--compare") {
		t.Errorf("two journals without --compare: %v", err)
	}
}
