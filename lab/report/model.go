package report

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ratingslab/lab/lab/audit"
	"github.com/ratingslab/lab/lab/journal"
)

// run is one journal in a report, with its label ("" alone, "A"/"B" when
// compared).
type run struct {
	Label   string
	Name    string // journal file's base name
	Journal *journal.Journal
}

// document is everything the templates show.
type document struct {
	Title    string
	Compare  bool
	Runs     []runInfo
	Verdicts []verdictRow
	Faults   []faultRow
	Recovery []recoveryRow
	Probes   []probeRow
	Audits   []auditRow
	Findings []findingRow
	// FindingsLeftOut counts findings not listed (the first maxFindings are).
	FindingsLeftOut int
	Grids           []grid
	Notes           []string
}

type runInfo struct {
	Label, Name, Kind, Title          string
	Started, Ended, Duration          string
	Seed                              uint64
	Variants, Settings, Ledger, Error string
	Platform                          string
	SLO                               string
	Samples, FaultCount, RecoveryNote string
}

type verdictRow struct {
	Run, Variant, Verdict        string
	Pass                         bool
	Before, During, After        string
	Detect, Recovered, Converged string
	AuditAPI, AuditStore         string
}

type faultRow struct {
	Run, ID, Fault, Variant, Targets, Params string
	PlannedAt, PlannedFor                    string
	Injected, Healed, Error                  string
	Outcome                                  string // what the target decided (a registry's decision)
}

type recoveryRow struct {
	Run, Fault, Variant             string
	Detect, Success, P99, Lag, View string
	Failed, Budget, Baseline, Note  string
}

type probeRow struct {
	Run, Phase, Variant, Probe, Tolerance, Observed, Result string
	OK                                                      bool
}

type auditRow struct {
	Run, Variant, Source                         string
	Ack, Amb, Failed, Rejected                   int64
	Lost, Dup, Phantoms, AmbApplied, SumMismatch int64
	Result, Requests, Notes                      string
	OK                                           bool
}

type findingRow struct {
	Run, Variant, Source string
	Movie                int64
	Count, Allowed       string
	Sum, SumAllowed      string
	Explanation          string
}

// grid is a block of charts: one row per metric, one column per panel.
type grid struct {
	Title   string
	Columns []string
	Rows    []chartRow
}

type chartRow struct {
	Title string
	Cells []chartCell
}

type chartCell struct {
	File string // charts/<file>.png, relative to the report
	NA   string // why there is no chart
	png  []byte
}

// maxFindings bounds the per-movie findings listed.
const maxFindings = 50

func buildDocument(runs []run) (*document, error) {
	d := &document{Compare: len(runs) > 1}
	if d.Compare {
		d.Title = fmt.Sprintf("Comparison: %s vs %s", runs[0].Name, runs[1].Name)
	} else {
		d.Title = runs[0].Journal.Title
		if d.Title == "" {
			d.Title = runs[0].Name
		}
	}
	for _, r := range runs {
		j := r.Journal
		recovery := j.Recovery
		info := runInfo{
			Label: r.Label, Name: r.Name, Kind: j.Kind, Title: j.Title,
			Started: j.Started.UTC().Format(time.RFC3339), Ended: j.Ended.UTC().Format(time.RFC3339),
			Duration: fmtDuration(j.Ended.Sub(j.Started)), Seed: j.Seed,
			Variants: strings.Join(j.Variants, ", "), Ledger: j.Ledger, Error: j.Error, Platform: orDash(j.Platform),
			SLO:        pct(sloOf(j)),
			Samples:    fmt.Sprint(len(j.Samples)),
			FaultCount: fmt.Sprint(len(j.Faults)),
		}
		if len(recovery) == 0 && len(j.Faults) > 0 {
			recovery = journal.ComputeRecovery(*j)
			info.RecoveryNote = "recovery metrics computed from the samples when rendering (the journal held none)"
		}
		var settings []string
		for _, k := range sortedKeys(j.Settings) {
			settings = append(settings, k+"="+j.Settings[k])
		}
		info.Settings = strings.Join(settings, ", ")
		d.Runs = append(d.Runs, info)

		for _, v := range j.Variants {
			d.Verdicts = append(d.Verdicts, verdictOf(r, v, recovery))
		}
		for _, f := range j.Faults {
			d.Faults = append(d.Faults, faultRow{
				Run: r.Label, ID: f.ID, Fault: f.Fault, Variant: orDash(f.Variant), Targets: strings.Join(f.Targets, ", "),
				Params: joinParams(f.Params), PlannedAt: "+" + f.PlannedAt.String(), PlannedFor: f.PlannedFor.String(),
				Injected: offset(j.Started, f.InjectedAt), Healed: offset(j.Started, f.HealedAt), Error: f.Error,
				Outcome: f.Outcome,
			})
		}
		for _, rc := range recovery {
			d.Recovery = append(d.Recovery, recoveryRow{
				Run: r.Label, Fault: rc.FaultID, Variant: rc.Variant,
				Detect: fmtOptional(rc.TimeToDetect, "no errors seen"), Success: fmtOptional(rc.SuccessRecovered, "never"),
				P99:    fmtApplicable(j, rc.Variant, journal.SeriesClientP99, rc.P99Recovered),
				Lag:    fmtApplicable(j, rc.Variant, journal.SeriesConsumerLag, rc.LagRecovered),
				View:   fmtApplicable(j, rc.Variant, journal.SeriesViewGap, rc.ViewConverged),
				Failed: fmt.Sprint(rc.FailedDuringFault), Budget: pct(rc.ErrorBudgetBurned),
				Baseline: fmt.Sprintf("success %s, p99 %s", pct(rc.BaselineSuccessRatio), fmtSeconds(rc.BaselineP99Seconds)),
				Note:     rc.Note,
			})
		}
		for _, ph := range sortedPhases(j.Phases, j.Variants) {
			for _, pr := range ph.Probes {
				row := probeRow{Run: r.Label, Phase: ph.Name, Variant: ph.Variant, Probe: pr.Name, Tolerance: pr.Tolerance, Observed: pr.Observed, OK: pr.OK}
				row.Result = mark(pr.OK)
				if pr.Error != "" {
					row.Observed = strings.TrimSpace(row.Observed + " (" + pr.Error + ")")
				}
				d.Probes = append(d.Probes, row)
			}
		}
		for _, a := range j.Audit {
			d.Audits = append(d.Audits, auditRowOf(r.Label, a))
			for _, f := range a.Movies {
				if len(d.Findings) >= maxFindings {
					d.FindingsLeftOut++
					continue
				}
				d.Findings = append(d.Findings, findingRow{
					Run: r.Label, Variant: a.Variant, Source: a.Source, Movie: f.MovieID,
					Count: fmt.Sprint(f.Count), Allowed: fmt.Sprintf("%d..%d", f.MinCount, f.MaxCount),
					Sum: tenths(f.SumTenths), SumAllowed: tenths(f.MinSumTenths) + ".." + tenths(f.MaxSumTenths),
					Explanation: f.Explanation,
				})
			}
		}
		if info.RecoveryNote != "" {
			d.Notes = append(d.Notes, label(r.Label)+info.RecoveryNote)
		}
	}
	grids, err := buildGrids(runs)
	if err != nil {
		return nil, err
	}
	d.Grids = grids
	return d, nil
}

func label(l string) string {
	if l == "" {
		return ""
	}
	return l + ": "
}

func sloOf(j *journal.Journal) float64 {
	if j.SLO > 0 && j.SLO < 1 {
		return j.SLO
	}
	return journal.DefaultSLO
}

func verdictOf(r run, v string, recovery []journal.Recovery) verdictRow {
	j := r.Journal
	row := verdictRow{Run: r.Label, Variant: v, Verdict: "—"}
	if ok, found := j.Verdict[v]; found {
		row.Pass = ok
		row.Verdict = map[bool]string{true: "PASS", false: "FAIL"}[ok]
	}
	phase := func(name string) string {
		for _, ph := range j.Phases {
			if ph.Name == name && ph.Variant == v {
				good := 0
				for _, p := range ph.Probes {
					if p.OK {
						good++
					}
				}
				return fmt.Sprintf("%s %d/%d", mark(ph.OK), good, len(ph.Probes))
			}
		}
		return "—"
	}
	row.Before, row.During, row.After = phase(journal.PhaseBefore), phase(journal.PhaseDuring), phase(journal.PhaseAfter)
	var detect, success, view []string
	for _, rc := range recovery {
		if rc.Variant != v {
			continue
		}
		prefix := ""
		if countFaults(recovery, v) > 1 {
			prefix = rc.FaultID + " "
		}
		detect = append(detect, prefix+fmtOptional(rc.TimeToDetect, "unseen"))
		success = append(success, prefix+fmtOptional(rc.SuccessRecovered, "never"))
		view = append(view, prefix+fmtOptional(rc.ViewConverged, "never"))
	}
	row.Detect, row.Recovered, row.Converged = joinOrDash(detect), joinOrDash(success), joinOrDash(view)
	row.AuditAPI, row.AuditStore = "—", "—"
	for _, a := range j.Audit {
		if a.Variant != v {
			continue
		}
		s := auditSummary(a)
		switch a.Source {
		case audit.SourceAPI:
			row.AuditAPI = s
		case audit.SourceStore:
			row.AuditStore = s
		}
	}
	return row
}

func countFaults(rs []journal.Recovery, v string) int {
	n := 0
	for _, r := range rs {
		if r.Variant == v {
			n++
		}
	}
	return n
}

func auditSummary(a audit.Result) string {
	if !a.Checked {
		return "not checked: " + a.Error
	}
	if a.OK {
		return fmt.Sprintf("✓ clean (%d ambiguous, %d applied)", a.Ambiguous, a.AmbiguousApplied)
	}
	var parts []string
	for _, p := range []struct {
		n    int64
		what string
	}{{a.Lost, "lost"}, {a.Duplicates, "duplicate"}, {a.Phantoms, "phantom"}, {a.SumMismatches, "sum mismatch"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
		}
	}
	if a.Requests != nil && !a.Requests.OK() && len(parts) == 0 {
		parts = append(parts, fmt.Sprintf("%d lost, %d phantom by request id", a.Requests.Lost, a.Requests.Phantoms))
	}
	return "✗ " + strings.Join(parts, ", ")
}

func auditRowOf(runLabel string, a audit.Result) auditRow {
	row := auditRow{
		Run: runLabel, Variant: a.Variant, Source: a.Source,
		Ack: a.Acknowledged, Amb: a.Ambiguous, Failed: a.Failed, Rejected: a.Rejected,
		Lost: a.Lost, Dup: a.Duplicates, Phantoms: a.Phantoms, AmbApplied: a.AmbiguousApplied, SumMismatch: a.SumMismatches,
		OK: a.OK, Result: auditSummary(a), Notes: strings.Join(a.Notes, "; "),
	}
	if rq := a.Requests; rq != nil {
		row.Requests = fmt.Sprintf("lost %d, phantoms %d, ambiguous applied %d of %d, altered %d",
			rq.Lost, rq.Phantoms, rq.AmbiguousApplied, rq.AmbiguousApplied+rq.AmbiguousNotApplied, rq.Altered)
		if len(rq.LostIDs) > 0 {
			row.Requests += "; lost ids: " + strings.Join(rq.LostIDs, " ")
		}
		if len(rq.PhantomIDs) > 0 {
			row.Requests += "; phantom ids: " + strings.Join(rq.PhantomIDs, " ")
		}
	}
	return row
}

func sortedPhases(phases []journal.PhaseResult, variants []string) []journal.PhaseResult {
	order := map[string]int{journal.PhaseBefore: 0, journal.PhaseDuring: 1, journal.PhaseAfter: 2}
	vorder := map[string]int{}
	for i, v := range variants {
		vorder[v] = i
	}
	out := append([]journal.PhaseResult(nil), phases...)
	sort.SliceStable(out, func(a, b int) bool {
		if order[out[a].Name] != order[out[b].Name] {
			return order[out[a].Name] < order[out[b].Name]
		}
		return vorder[out[a].Variant] < vorder[out[b].Variant]
	})
	return out
}

// buildGrids lays the charts out: alone, one grid with a column per
// variant; compared, one grid per variant with a column per run.
func buildGrids(runs []run) ([]grid, error) {
	var layouts []struct {
		title  string
		panels []panel
	}
	if len(runs) == 1 {
		var ps []panel
		for _, v := range runs[0].Journal.Variants {
			ps = append(ps, panel{Label: v, Journal: runs[0].Journal, Variant: v})
		}
		layouts = append(layouts, struct {
			title  string
			panels []panel
		}{"Variants side by side", ps})
	} else {
		for _, v := range unionVariants(runs) {
			var ps []panel
			for _, r := range runs {
				if contains(r.Journal.Variants, v) {
					ps = append(ps, panel{Label: r.Label + " · " + r.Name + " · " + v, Journal: r.Journal, Variant: v})
				}
			}
			layouts = append(layouts, struct {
				title  string
				panels []panel
			}{"Variant " + v, ps})
		}
	}
	var out []grid
	for gi, l := range layouts {
		g := grid{Title: l.title}
		for _, p := range l.panels {
			g.Columns = append(g.Columns, p.Label)
		}
		xmax := xMax(l.panels)
		for _, m := range metrics {
			row := chartRow{Title: m.Title}
			lo, hi := yRange(m, l.panels)
			for pi, p := range l.panels {
				if !p.has(m) {
					row.Cells = append(row.Cells, chartCell{NA: naReason(m, p)})
					continue
				}
				png, err := renderChart(m, p, lo, hi, xmax)
				if err != nil {
					return nil, err
				}
				name := fmt.Sprintf("charts/g%d-%s-%d-%s.png", gi+1, m.ID, pi+1, fileSafe(p.Variant))
				row.Cells = append(row.Cells, chartCell{File: name, png: png})
			}
			g.Rows = append(g.Rows, row)
		}
		out = append(out, g)
	}
	return out, nil
}

func naReason(m metric, p panel) string {
	switch m.ID {
	case "breaker":
		return "no circuit breakers in the " + p.Variant + " variant's samples"
	case "lag", "freshness":
		return "no consumer in the " + p.Variant + " variant's samples"
	}
	return "no samples of this metric for " + p.Variant
}

func unionVariants(runs []run) []string {
	var out []string
	for _, r := range runs {
		for _, v := range r.Journal.Variants {
			if !contains(out, v) {
				out = append(out, v)
			}
		}
	}
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, s)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func joinParams(m map[string]string) string {
	var out []string
	for _, k := range sortedKeys(m) {
		out = append(out, k+"="+m[k])
	}
	return strings.Join(out, ", ")
}

func joinOrDash(l []string) string {
	if len(l) == 0 {
		return "—"
	}
	return strings.Join(l, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func mark(ok bool) string {
	if ok {
		return "✓"
	}
	return "✗"
}

func offset(start, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return "+" + fmtDuration(t.Sub(start))
}

func fmtDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + fmtDuration(-d)
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

func fmtOptional(d *journal.Duration, never string) string {
	if d == nil {
		return never
	}
	return fmtDuration(d.D())
}

// fmtApplicable formats a recovery time, or "n/a" when the variant has no
// samples of the series it derives from (no consumer lag in RPC).
func fmtApplicable(j *journal.Journal, variant, series string, d *journal.Duration) string {
	if !hasSeries(j, variant, series) {
		return "n/a"
	}
	return fmtOptional(d, "never")
}

func hasSeries(j *journal.Journal, variant, series string) bool {
	for _, s := range j.Samples {
		if s.Variant == variant {
			if _, ok := s.Values[series]; ok {
				return true
			}
		}
	}
	return false
}

func fmtSeconds(s float64) string {
	return fmtDuration(time.Duration(s * float64(time.Second)))
}

func pct(r float64) string {
	return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.2f", r*100), "0"), ".0") + " %"
}

func tenths(t int64) string {
	neg := t < 0
	if neg {
		t = -t
	}
	s := fmt.Sprintf("%d", t/10)
	if f := t % 10; f != 0 {
		s += fmt.Sprintf(".%d", f)
	}
	if neg {
		s = "-" + s
	}
	return s
}

// journalName is how a report names a journal: its file name without
// directory and extension.
func journalName(path string) string {
	return strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
}
