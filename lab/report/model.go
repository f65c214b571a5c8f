package report

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/ratingslab/lab/lab/audit"
	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/lab/kv"
	"github.com/ratingslab/lab/services/lib/duration"
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
	Title   string
	Compare bool
	Runs    []runInfo
	// Differences open a comparison: the figures that matter, per
	// variant and run.
	Differences []diffRow
	Verdicts    []verdictRow
	// Hypotheses are the verdict tables, one per run, exactly as `lab
	// chaos run` prints them (journal.VerdictTable).
	Hypotheses []hypothesis
	Clients    []clientRow
	Faults     []faultRow
	// CatalogEdits are the movie-add actions' figures, one table each.
	CatalogEdits []catalogTable
	Recovery     []recoveryRow
	Audits       []auditRow
	Findings     []findingRow
	// FindingsLeftOut counts findings not listed (the first maxFindings are).
	FindingsLeftOut int
	Grids           []grid
	Notes           []string
}

// catalogTable is one movie-add: what was added when, and per variant how
// the ratings of the new movie ended (journal.CatalogEdit.Figures, as the
// terminal prints them).
type catalogTable struct {
	Run, Heading, Error string
	Variants            []string
	Rows                [][]string
}

type runInfo struct {
	Label, Name, Kind, Title          string
	Started, Ended, Duration          string
	Seed                              uint64
	Variants, Settings, Ledger, Error string
	Platform                          string
	SLO                               string
	Samples, FaultCount, RecoveryNote string
	LagSource                         string
}

type diffRow struct {
	Run, Variant                             string
	SuccessDuring, P99During, P99Run, Errors string
	Recovered, Audit, Verdict                string
	Pass                                     bool
}

type hypothesis struct {
	Run      string
	Variants []string
	Rows     []journal.VerdictRow
	Verdict  []string
	Notes    []string
}

type clientRow struct {
	Run, Variant, Window, Class string
	Answered, Unexpected4xx     uint64
	Success, P50, P99, P999     string
	Max, Dashboard              string
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

type auditRow struct {
	Run, Variant, Source                                        string
	Ack, Amb, Failed, Rejected, Unexpected                      int64
	Lost, Dup, Phantoms, AmbApplied, AmbNotApplied, SumMismatch int64
	Result, Requests, Notes                                     string
	OK                                                          bool
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
			SLO:        sloText(j),
			Samples:    fmt.Sprint(len(j.Samples)),
			FaultCount: fmt.Sprint(len(j.Faults)),
			LagSource:  j.LagSource,
		}
		if len(recovery) == 0 && len(j.Faults) > 0 {
			recovery = journal.ComputeRecovery(*j)
			info.RecoveryNote = "recovery metrics computed from the samples when rendering (the journal held none)"
		}
		info.Settings = kv.Join(j.Settings)
		d.Runs = append(d.Runs, info)

		for _, v := range j.Variants {
			d.Verdicts = append(d.Verdicts, verdictOf(r, v, recovery))
			if d.Compare {
				d.Differences = append(d.Differences, diffOf(r, v, recovery))
			}
			d.Clients = append(d.Clients, clientRowsOf(r, v)...)
		}
		if len(j.Phases) > 0 {
			vt := j.VerdictTable()
			var heads []string
			for _, v := range vt.Variants {
				heads = append(heads, strings.ToUpper(v)) // as the terminal prints them
			}
			d.Hypotheses = append(d.Hypotheses, hypothesis{Run: r.Label, Variants: heads, Rows: vt.Rows, Verdict: vt.Verdict, Notes: vt.Notes})
		}
		for _, f := range j.Faults {
			d.Faults = append(d.Faults, faultRow{
				Run: r.Label, ID: f.ID, Fault: f.Fault, Variant: orDash(f.Variant), Targets: strings.Join(f.Targets, ", "),
				Params: kv.Join(f.Params), PlannedAt: "+" + f.PlannedAt.String(), PlannedFor: f.PlannedFor.String(),
				Injected: offset(j.Started, f.InjectedAt), Healed: offset(j.Started, f.HealedAt), Error: f.Error,
				Outcome: f.Outcome,
			})
		}
		for _, c := range j.CatalogEdits {
			ct := catalogTable{Run: r.Label, Error: c.Error, Rows: c.Figures(),
				Heading: fmt.Sprintf("%s: movie %d %q added at %s; a refusal (422) is owed until the variant answers a rating of it with a 2xx, at most until +%s",
					c.ID, c.MovieID, c.Title, offset(j.Started, c.AddedAt), c.RefuseUntil)}
			for _, v := range c.Variants {
				ct.Variants = append(ct.Variants, strings.ToUpper(v.Variant))
			}
			d.CatalogEdits = append(d.CatalogEdits, ct)
		}
		for _, rc := range recovery {
			d.Recovery = append(d.Recovery, recoveryRow{
				Run: r.Label, Fault: rc.FaultID, Variant: rc.Variant,
				Detect:  fmtSignal(j, rc, journal.SignalSuccess, journal.SeriesClientSuccessRatio, rc.TimeToDetect, "not detected"),
				Success: fmtSignal(j, rc, journal.SignalSuccess, journal.SeriesClientSuccessRatio, rc.SuccessRecovered, "never"),
				P99:     fmtSignal(j, rc, journal.SignalP99, journal.SeriesClientP99, rc.P99Recovered, "never"),
				Lag:     fmtSignal(j, rc, journal.SignalLag, journal.SeriesConsumerLag, rc.LagRecovered, "never"),
				View:    fmtSignal(j, rc, journal.SignalView, journal.SeriesViewGap, rc.ViewConverged, "never"),
				Failed:  fmt.Sprint(rc.FailedDuringFault), Budget: fmtBudget(rc.ErrorBudgetBurned),
				Baseline: fmt.Sprintf("success %s, p99 %s", pct(rc.BaselineSuccessRatio), fmtLatency(duration.Ptr(time.Duration(rc.BaselineP99Seconds*float64(time.Second))))),
				Note:     rc.Note,
			})
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

// sloText is the run's objective: the whole SLO when the journal has it,
// else the success objective the error budget derives from.
func sloText(j *journal.Journal) string {
	if j.Objective != "" {
		return j.Objective
	}
	return pct(sloOf(j))
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
		if j.Control(v) {
			row.Verdict += " " + journal.ControlNote
		}
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
		detect = append(detect, prefix+fmtSignal(j, rc, journal.SignalSuccess, journal.SeriesClientSuccessRatio, rc.TimeToDetect, "not detected"))
		success = append(success, prefix+fmtSignal(j, rc, journal.SignalSuccess, journal.SeriesClientSuccessRatio, rc.SuccessRecovered, "never"))
		view = append(view, prefix+fmtSignal(j, rc, journal.SignalView, journal.SeriesViewGap, rc.ViewConverged, "never"))
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

// diffOf is one variant of one run in the comparison's opening table.
func diffOf(r run, v string, recovery []journal.Recovery) diffRow {
	j := r.Journal
	row := diffRow{Run: r.Label + " · " + r.Name, Variant: v, SuccessDuring: "—", P99During: "—", P99Run: "—", Errors: "—", Verdict: "—"}
	if ok, found := j.Verdict[v]; found {
		row.Pass = ok
		row.Verdict = map[bool]string{true: "PASS", false: "FAIL"}[ok]
		if j.Control(v) {
			row.Verdict += " " + journal.ControlNote
		}
	}
	if c, ok := j.FindClient(v, journal.WindowDuring); ok {
		row.SuccessDuring = fmtRatio(c.All.SuccessRatio)
		row.P99During = fmtLatency(c.All.Latency.P99)
		row.Errors = fmt.Sprint(c.All.Answered - c.All.AsExpected)
	}
	if c, ok := j.FindClient(v, journal.WindowRun); ok {
		row.P99Run = fmtLatency(c.All.Latency.P99)
	}
	var back []string
	for _, rc := range recovery {
		if rc.Variant == v {
			prefix := ""
			if countFaults(recovery, v) > 1 {
				prefix = rc.FaultID + " "
			}
			back = append(back, prefix+fmtSignal(j, rc, journal.SignalSuccess, journal.SeriesClientSuccessRatio, rc.SuccessRecovered, "never"))
		}
	}
	row.Recovered = joinOrDash(back)
	var audits []string
	for _, a := range j.Audit {
		if a.Variant == v {
			audits = append(audits, a.Source+": "+auditSummary(a))
		}
	}
	row.Audit = joinOrDash(audits)
	return row
}

// clientRowsOf are a variant's exact client figures per window and class.
func clientRowsOf(r run, v string) []clientRow {
	var out []clientRow
	for _, c := range r.Journal.Client {
		if c.Variant != v {
			continue
		}
		for _, class := range []struct {
			name string
			f    journal.ClientFigures
		}{{"all", c.All}, {"reads", c.Reads}, {"writes", c.Writes}} {
			if class.f.Answered == 0 {
				continue
			}
			l := class.f.Latency
			out = append(out, clientRow{Run: r.Label, Variant: v, Window: c.Window, Class: class.name,
				Answered: class.f.Answered, Unexpected4xx: class.f.Unexpected4xx, Success: fmtRatio(class.f.SuccessRatio),
				P50: fmtLatency(l.P50), P99: fmtLatency(l.P99), P999: fmtLatency(l.P999), Max: fmtLatency(l.Max),
				Dashboard: fmtLatency(class.f.DashboardP99)})
		}
	}
	return out
}

// fmtLatency writes a measured latency with the precision it has (four
// significant digits: 322.6ms, 1.005s), "—" when absent.
func fmtLatency(d *duration.Duration) string {
	if d == nil {
		return "—"
	}
	switch v := d.D(); {
	case v < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(v)/1e3)
	case v < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(v)/1e6)
	case v < time.Second:
		return fmt.Sprintf("%.1fms", float64(v)/1e6)
	default:
		return fmt.Sprintf("%.3fs", v.Seconds())
	}
}

func fmtRatio(r *float64) string {
	if r == nil {
		return "—"
	}
	return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.2f", *r*100), "0"), ".0") + " %"
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

// auditSummary says in one line what the audit found: the violations (a
// bug each), then the ambiguous ratings split into applied and not
// (either is correct).
func auditSummary(a audit.Result) string {
	if !a.Checked {
		return "not checked: " + a.Error
	}
	ambiguous := "no ambiguous ratings"
	if a.Ambiguous > 0 {
		ambiguous = fmt.Sprintf("%d ambiguous (%d applied, %d not)", a.Ambiguous, a.AmbiguousApplied, a.AmbiguousNotApplied)
	}
	var parts []string
	for _, p := range []struct {
		n    int64
		what string
	}{{a.Lost, "lost"}, {a.Duplicates, "duplicated"}, {a.Phantoms, "phantom"}, {a.SumMismatches, "sum mismatch"}, {a.UnexpectedRejections, "unexpected 4xx"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
		}
	}
	if a.Retried > 0 {
		ambiguous += fmt.Sprintf("; %d retried with the same request id (%d resends), %d doubled", a.Retried, a.Retries, a.RetriedDoubled)
	}
	if a.Requests != nil && !a.Requests.OK() && len(parts) == 0 {
		parts = append(parts, fmt.Sprintf("%d lost, %d phantom, %d altered by request id", a.Requests.Lost, a.Requests.Phantoms, a.Requests.Altered))
	}
	if len(parts) == 0 {
		return "✓ nothing lost, duplicated or phantom; " + ambiguous
	}
	return "✗ " + strings.Join(parts, ", ") + "; " + ambiguous
}

func auditRowOf(runLabel string, a audit.Result) auditRow {
	row := auditRow{
		Run: runLabel, Variant: a.Variant, Source: a.Source,
		Ack: a.Acknowledged, Amb: a.Ambiguous, Failed: a.Failed, Rejected: a.Rejected, Unexpected: a.UnexpectedRejections,
		Lost: a.Lost, Dup: a.Duplicates, Phantoms: a.Phantoms, AmbApplied: a.AmbiguousApplied, AmbNotApplied: a.AmbiguousNotApplied,
		SumMismatch: a.SumMismatches, OK: a.OK, Result: auditSummary(a), Notes: strings.Join(a.Notes, "; "),
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
	if len(a.UnexpectedIDs) > 0 {
		row.Notes = joinOrEmpty("; ", row.Notes, "valid ratings answered 4xx: "+strings.Join(a.UnexpectedIDs, " "))
	}
	return row
}

func joinOrEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
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
	case "pools":
		return "no outbound connection pools in the " + p.Variant + " variant's samples"
	case "calls", "bulkheads":
		return "no activity of the " + p.Variant + " variant's parts in the samples (or a journal from before these series)"
	case "dlq":
		return "no dead-letter topic in the " + p.Variant + " variant's samples"
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

func fmtOptional(d *duration.Duration, never string) string {
	if d == nil {
		return never
	}
	return fmtDuration(d.D())
}

// fmtSignal formats one recovery signal: "n/a" when the variant has no
// such series (no consumer lag in RPC), "untouched" when the fault never
// moved it out of its band, else the time (or never).
func fmtSignal(j *journal.Journal, rc journal.Recovery, signal, series string, d *duration.Duration, never string) string {
	switch {
	case !hasSeries(j, rc.Variant, series):
		return "n/a"
	case !contains(rc.Touched, signal):
		return "untouched"
	}
	return fmtOptional(d, never)
}

// fmtBudget is the share of the run's error budget a fault burned: a
// percentage up to the whole budget, a multiple beyond it.
func fmtBudget(b float64) string {
	if b <= 1 {
		return pct(b)
	}
	return fmt.Sprintf("%.3g× the budget: SLO broken", b)
}

func hasSeries(j *journal.Journal, variant, series string) bool {
	for _, s := range j.Samples {
		if s.Variant == variant {
			if _, ok := s.Values[series]; ok || s.IsUnknown(series) {
				return true
			}
		}
	}
	return false
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
