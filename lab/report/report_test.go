package report

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/services/lib/duration"
	"github.com/ratingslab/lab/services/lib/servetest"
)

const fixture = "testdata/journal.json"

func TestRenderWritesEveryChartAndTable(t *testing.T) {
	dir := t.TempDir()
	out, err := RenderFile(fixture, dir)
	if err != nil {
		t.Fatal(err)
	}
	// rpc has no consumer (lag, dead letters, freshness); stream no
	// breaker: 10 metrics × 2 variants − 4 not applicable.
	if len(out.Charts) != 16 {
		t.Errorf("charts = %d, want 16: %v", len(out.Charts), out.Charts)
	}
	for _, c := range out.Charts {
		f, err := os.Open(c)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if n := distinctColours(img); n < 8 {
			t.Errorf("%s looks empty: %d colours", filepath.Base(c), n)
		}
	}
	html, _ := os.ReadFile(out.HTML)
	md, _ := os.ReadFile(out.Markdown)
	for _, want := range []string{
		"Ratings cut off for 20 s (breakers on)",
		"FAIL", "PASS", // verdicts
		"cut-rpc", "webserver-rpc-&gt;ratings-rpc", // fault timeline
		"phantom",                 // audit finding
		"r-0001412-rpc",           // request-level audit
		"success_rate &gt;= 0.99", // probes
		"data:image/png;base64,",
		"no circuit breakers in the stream variant",
		"84 ambiguous (61 applied, 23 not)", // the audit's words
		"Client figures", "during",
	} {
		if !strings.Contains(string(html), want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if bytes.Contains(html, []byte("http://")) || bytes.Contains(html, []byte("https://")) {
		t.Error("the HTML must work offline: it references a URL")
	}
	if c := strings.Count(string(html), "<img "); c != 16 {
		t.Errorf("HTML has %d images, want 16", c)
	}
	for _, bad := range []string{"clean (0 ambiguous", "unseen", "no errors seen"} {
		if strings.Contains(string(html), bad) {
			t.Errorf("HTML still says %q", bad)
		}
	}
	for _, want := range []string{"## Verdict", "| rpc | **FAIL** |", "![charts/g1-rate-1-rpc.png](charts/g1-rate-1-rpc.png)", "## Recovery", "| cut-rpc | rpc |",
		"| stream | during | all |", "untouched", "| PHASE | PROBE | TOLERANCE | RPC | STREAM |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("Markdown lacks %q", want)
		}
	}
}

func TestRenderingTwiceGivesIdenticalFiles(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	oa, err := RenderFile(fixture, a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RenderFile(fixture, b); err != nil {
		t.Fatal(err)
	}
	files := append([]string{oa.HTML, oa.Markdown}, oa.Charts...)
	for _, fa := range files {
		rel, _ := filepath.Rel(a, fa)
		x, _ := os.ReadFile(fa)
		y, err := os.ReadFile(filepath.Join(b, rel))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between two renderings of the same journal", rel)
		}
	}
}

func TestCompareSetsTwoRunsSideBySide(t *testing.T) {
	dir := t.TempDir()
	out, err := CompareFiles(fixture, "testdata/journal-breakers-off.json", dir)
	if err != nil {
		t.Fatal(err)
	}
	html, _ := os.ReadFile(out.HTML)
	for _, want := range []string{"journal vs journal-breakers-off", "breakers=on", "breakers=off", "Variant rpc", "Variant stream", "A · journal · rpc", "B · journal-breakers-off · rpc",
		"<h2>Differences</h2>", "success during fault"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("comparison lacks %q", want)
		}
	}
	// The differences come first, before the verdict.
	if strings.Index(string(html), "<h2>Differences</h2>") > strings.Index(string(html), "<h2>Verdict</h2>") {
		t.Error("the comparison must open with its differences")
	}
	// Breakers off still draws every breaker, by name, as disabled.
	if len(out.Charts) != 2*16 {
		t.Errorf("charts = %d, want 32", len(out.Charts))
	}
}

func TestBadJournalsGiveAnErrorNamingThemAndWriteNothing(t *testing.T) {
	tmp := t.TempDir()
	corrupt := filepath.Join(tmp, "corrupt.json")
	os.WriteFile(corrupt, []byte(`{"version": 2, "kind": `), 0o644)
	old := filepath.Join(tmp, "old.json")
	os.WriteFile(old, []byte(`{"version": 0, "kind": "experiment"}`), 0o644)
	// A journal of the previous format: its figures mean something else,
	// so it is refused by name rather than rendered with today's words.
	v1 := filepath.Join(tmp, "v1.json")
	fx, _ := os.ReadFile(fixture)
	os.WriteFile(v1, bytes.Replace(fx, []byte(`"version": 2`), []byte(`"version": 1`), 1), 0o644)
	for _, c := range []struct{ path, want string }{
		{filepath.Join(tmp, "missing.json"), "missing.json: no such file"},
		{corrupt, "corrupt.json: corrupt JSON"},
		{old, "old.json: version 0 is not supported"},
		{v1, "v1.json: version 1 is not supported (this lab reads version 2): version 1 interpolated latency percentiles"},
	} {
		out := filepath.Join(tmp, "out-"+filepath.Base(c.path))
		_, err := RenderFile(c.path, out)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.path, err, c.want)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%s: report directory written for a bad journal", c.path)
		}
	}
}

func TestRenderShowsARunWithoutFaultsOrAudit(t *testing.T) {
	j := journal.Journal{Version: journal.CurrentVersion, Kind: journal.KindLoad, Title: "plain load", Variants: []string{"rpc"},
		Started: fixtureStart, Ended: fixtureStart.Add(3 * time.Second)}
	for i := 1; i <= 3; i++ {
		s := journal.Sample{At: fixtureStart.Add(time.Duration(i) * time.Second), Variant: "rpc"}
		s.Set(journal.SeriesClientRPS, 10)
		j.Samples = append(j.Samples, s)
	}
	out, err := RenderJournal(j, "plain", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	html, _ := os.ReadFile(out.HTML)
	for _, want := range []string{"No faults in this run.", "No audit in this journal.", "No hypothesis was checked."} {
		if !strings.Contains(string(html), want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
}

// TestHTMLRendersInHeadlessChromium opens the page in a real browser and
// checks the screenshot is a page of charts, not a blank or broken one.
func TestHTMLRendersInHeadlessChromium(t *testing.T) {
	chromium := "/usr/bin/chromium"
	_, err := os.Stat(chromium)
	servetest.Need(t, err == nil, "chromium (/usr/bin/chromium)", "apt-get install chromium")
	dir := t.TempDir()
	out, err := RenderFile(fixture, filepath.Join(dir, "report"))
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "shot.png")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	abs, _ := filepath.Abs(out.HTML)
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--screenshot="+shot, "--window-size=1400,2000", "file://"+abs)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, b)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 1400 || b.Dy() != 2000 {
		t.Errorf("screenshot is %v, want 1400×2000", b)
	}
	// A blank page has one colour; a page of text only a few dozen
	// (anti-aliasing); charts with coloured lines and shading add many.
	if n := distinctColours(img); n < 200 {
		t.Errorf("screenshot has %d distinct colours: looks blank", n)
	}
	if ink := inkShare(img); ink < 0.05 {
		t.Errorf("only %.1f %% of the screenshot is not white", ink*100)
	}
}

func distinctColours(img image.Image) int {
	seen := map[uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[(r>>8)<<16|(g>>8)<<8|bl>>8] = true
		}
	}
	return len(seen)
}

func inkShare(img image.Image) float64 {
	b := img.Bounds()
	var ink, all float64
	for y := b.Min.Y; y < b.Max.Y; y += 4 {
		for x := b.Min.X; x < b.Max.X; x += 4 {
			r, g, bl, _ := img.At(x, y).RGBA()
			all++
			if r < 0xf000 || g < 0xf000 || bl < 0xf000 {
				ink++
			}
		}
	}
	return ink / all
}

// A series that could not be measured is a gap in its line, never a value
// carried over; a known 0 is a point.
func TestUnknownValuesAreDrawnAsGaps(t *testing.T) {
	j := &journal.Journal{Version: journal.CurrentVersion, Kind: journal.KindExperiment, Variants: []string{"stream"}, Started: fixtureStart}
	for sec := 1; sec <= 6; sec++ {
		s := journal.Sample{At: fixtureStart.Add(time.Duration(sec) * time.Second), Variant: "stream"}
		if sec == 3 {
			s.SetUnknown(journal.SeriesConsumerLag)
		} else {
			s.Set(journal.SeriesConsumerLag, 0)
		}
		j.Samples = append(j.Samples, s)
	}
	segs := panel{Journal: j, Variant: "stream"}.points(journal.SeriesConsumerLag, 1, false)
	if len(segs) != 2 || len(segs[0]) != 2 || len(segs[1]) != 3 {
		t.Errorf("segments %v, want [1 2] and [4 5 6]: one unknown second is a gap", segs)
	}
}

// The report names the Kafka platform that ran the log variant.
func TestReportNamesTheKafkaPlatform(t *testing.T) {
	j := journal.Journal{Version: journal.CurrentVersion, Kind: journal.KindExperiment, Title: "on three nodes", Variants: []string{"stream"},
		Platform: "embedded (kfake, 3 nodes)", Started: fixtureStart, Ended: fixtureStart.Add(time.Second)}
	out, err := RenderJournal(j, "nodes", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{out.HTML, out.Markdown} {
		b, _ := os.ReadFile(f)
		if !strings.Contains(string(b), "embedded (kfake, 3 nodes)") {
			t.Errorf("%s does not name the platform", f)
		}
	}
}

// A catalog edit's figures get their own table, in both formats.
func TestReportShowsTheCatalogEdit(t *testing.T) {
	conv := duration.Ptr(12 * time.Second)
	j := journal.Journal{Version: journal.CurrentVersion, Kind: journal.KindExperiment, Title: "edit", Variants: []string{"rpc", "stream"},
		Started: fixtureStart, Ended: fixtureStart.Add(time.Minute),
		CatalogEdits: []journal.CatalogEdit{{ID: "m2", MovieID: 181, Title: "The Lab Movie", AddedAt: fixtureStart.Add(20 * time.Second), RefuseUntil: duration.Duration(time.Minute),
			Variants: []journal.CatalogConvergence{{Variant: "rpc", Sent: 10, Failed: 4, Acknowledged: 6, AfterEdit: conv}, {Variant: "stream", Sent: 10, Refused: 5, Acknowledged: 5, AfterEdit: conv}}}}}
	out, err := RenderJournal(j, "edit", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]string{out.Markdown: "| catalog convergence (edit → first 2xx for it) | 12s | 12s |", out.HTML: "<td>  refused (422) while not yet converged: owed</td><td class=\"num\">0</td><td class=\"num\">5</td>"} {
		b, _ := os.ReadFile(f)
		if !strings.Contains(string(b), want) || !strings.Contains(string(b), `movie 181 `) {
			t.Errorf("%s lacks %q", f, want)
		}
	}
}

// A control that did not hold is explained under the hypothesis, in both
// formats: no fault failed it, and how busy the shared machine was.
func TestReportExplainsAControlThatDidNotHold(t *testing.T) {
	j := journal.Journal{Version: journal.CurrentVersion, Kind: journal.KindExperiment, Title: "leader failover", Variants: []string{"rpc", "stream"},
		Started: fixtureStart, Ended: fixtureStart.Add(time.Minute), Verdict: map[string]bool{"rpc": false, "stream": true},
		Faults: []journal.FaultEvent{
			{ID: "m1", Fault: "leader-failover", Variant: "rpc", Error: journal.NoEquivalent + "the RPC variant has no broker"},
			{ID: "m1", Fault: "leader-failover", Variant: "stream", InjectedAt: fixtureStart.Add(15 * time.Second)}},
		Phases: []journal.PhaseResult{
			{Name: journal.PhaseAfter, Variant: "rpc", Probes: []journal.ProbeResult{{Name: "success_rate", Tolerance: "success_rate >= 0.99", Observed: "0.0000"}}},
			{Name: journal.PhaseAfter, Variant: "stream", Probes: []journal.ProbeResult{{Name: "success_rate", Tolerance: "success_rate >= 0.99", Observed: "1.0000", OK: true}}}}}
	for i, v := range []string{"rpc", "stream"} {
		s := journal.Sample{At: fixtureStart.Add(time.Duration(i+1) * time.Second), Variant: v}
		s.Set(journal.SeriesMachineCPUBusy, 0.98)
		j.Samples = append(j.Samples, s)
	}
	out, err := RenderJournal(j, "control", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{out.HTML, out.Markdown} {
		b, _ := os.ReadFile(f)
		for _, want := range []string{"Note: rpc ran as the control (no fault applied) and did not hold", "98 % busy on average"} {
			if !strings.Contains(string(b), want) {
				t.Errorf("%s lacks %q", f, want)
			}
		}
	}
}
