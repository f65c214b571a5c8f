package labsource

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/lab/kv"
	"github.com/ratingslab/lab/services/lib/duration"
)

// Units (Grafana's unit ids).
const (
	unitSeconds = "s"
	unitRatio   = "percentunit"
	unitCount   = "none"
)

// field is a column of a table frame: a typed empty vector and its unit.
func field(name string, vector any, unit string) *data.Field {
	f := data.NewField(name, nil, vector)
	if unit != "" {
		f.SetConfig(&data.FieldConfig{Unit: unit})
	}
	return f
}

func table(name string, fields ...*data.Field) *data.Frame {
	f := data.NewFrame(name, fields...)
	f.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeTable}
	return f
}

func seconds(d *duration.Duration) *float64 {
	if d == nil {
		return nil
	}
	s := d.D().Seconds()
	return &s
}

// faultsFrame is the fault windows frame: time and timeEnd make it a
// Grafana annotation source; title, text and tags fill the annotation.
func faultsFrame() *data.Frame {
	return table("faults",
		field("time", []time.Time{}, ""),
		field("timeEnd", []time.Time{}, ""),
		field("title", []string{}, ""),
		field("text", []string{}, ""),
		field("tags", []string{}, ""),
		field("run", []string{}, ""),
		field("id", []string{}, ""),
		field("fault", []string{}, ""),
		field("variant", []string{}, ""),
		field("targets", []string{}, ""),
		field("params", []string{}, ""),
		field("duration", []float64{}, unitSeconds),
		field("active", []bool{}, ""),
		field("source", []string{}, ""),
		field("outcome", []string{}, ""),
	)
}

func appendFault(f *data.Frame, runName, source string, ev journal.FaultEvent, from, to time.Time, active bool) {
	targets := strings.Join(ev.Targets, ", ")
	title := ev.Fault + " " + targets
	text := fmt.Sprintf("%s on %s (%s)", ev.Fault, targets, ev.Variant)
	if p := kv.Join(ev.Params); p != "" {
		text += ": " + p
	}
	if runName != "" {
		text += " · run " + runName + ", fault " + ev.ID
	}
	if ev.Outcome != "" {
		text += " · " + ev.Outcome
	}
	f.AppendRow(from, to, title, text, ev.Fault+","+ev.Variant, runName, ev.ID, ev.Fault, ev.Variant, targets, kv.Join(ev.Params), to.Sub(from).Seconds(), active, source, ev.Outcome)
}

func faultsQuery(ctx context.Context, in *Instance, q backend.DataQuery, m Model) backend.DataResponse {
	f := faultsFrame()
	var notices []data.Notice
	recorded := map[string]bool{}
	if in.store != nil {
		runs, ns, errRes := in.selectRuns(q, m)
		if errRes != nil {
			return *errRes
		}
		notices = ns
		for _, r := range runs {
			recorded[r.Name] = true
			for _, ev := range r.J.Faults {
				if !m.wants(ev.Variant) {
					continue
				}
				from, to, ok := ev.Window(r.J.Ended)
				if !ok {
					notices = append(notices, data.Notice{Severity: data.NoticeSeverityWarning, Text: fmt.Sprintf("run %s: fault %s (%s) was never injected: %s", r.Name, ev.ID, ev.Fault, ev.Error)})
					continue
				}
				appendFault(f, r.Name, "journal", ev, from, to, false)
			}
		}
	}
	// The running lab's faults that no journal holds yet: injected by hand
	// (`lab chaos inject`) or by an experiment still running.
	if m.Run == "" {
		live, err := in.liveFaults(ctx)
		if err != nil && in.store == nil {
			return badQuery("faults query: %v", err)
		}
		now := time.Now()
		for _, lf := range live {
			if recorded[chaosRun(lf.Owner)] {
				continue
			}
			if !m.wants(lf.Variant) {
				continue
			}
			to, active := lf.HealedAt, lf.HealedAt.IsZero()
			if active {
				to = now
			}
			if to.Before(q.TimeRange.From) || lf.InjectedAt.After(q.TimeRange.To) {
				continue
			}
			ev := journal.FaultEvent{ID: lf.ID, Fault: lf.Fault, Variant: lf.Variant, Targets: []string{lf.Target}, Params: lf.Params, Outcome: lf.Outcome}
			appendFault(f, "", "live", ev, lf.InjectedAt, to, active)
		}
	}
	return answer(notices, f)
}

func verdictText(j journal.Journal) string {
	var parts []string
	for _, v := range j.Variants {
		ok, has := j.Verdict[v]
		switch {
		case !has:
			parts = append(parts, v+" —")
		case ok:
			parts = append(parts, v+" PASS")
		default:
			parts = append(parts, v+" FAIL")
		}
		if has && j.Control(v) {
			parts[len(parts)-1] += " " + journal.ControlNote
		}
	}
	return strings.Join(parts, " · ")
}

func experimentsQuery(_ context.Context, in *Instance, q backend.DataQuery, m Model) backend.DataResponse {
	runs, notices, errRes := in.selectRuns(q, m)
	if errRes != nil {
		return *errRes
	}
	// One pass/fail column per variant any of the runs has.
	var variants []string
	seen := map[string]bool{}
	for _, r := range runs {
		for _, v := range r.J.Variants {
			if !seen[v] && m.wants(v) {
				seen[v] = true
				variants = append(variants, v)
			}
		}
	}
	sort.Strings(variants)
	fields := []*data.Field{
		field("time", []time.Time{}, ""),
		field("timeEnd", []time.Time{}, ""),
		field("run", []string{}, ""),
		field("title", []string{}, ""),
		field("kind", []string{}, ""),
		field("variants", []string{}, ""),
		field("verdict", []string{}, ""),
		field("passed", []bool{}, ""),
	}
	for _, v := range variants {
		fields = append(fields, field("passed "+v, []*bool{}, ""))
	}
	fields = append(fields,
		field("duration", []float64{}, unitSeconds),
		field("faults", []int64{}, unitCount),
		field("seed", []uint64{}, ""),
		field("platform", []string{}, ""),
		field("settings", []string{}, ""),
		field("error", []string{}, ""),
		field("notes", []string{}, ""),
	)
	f := table("experiments", fields...)
	for _, r := range runs {
		j := r.J
		passed := len(j.Verdict) > 0
		for _, v := range j.Variants {
			if m.wants(v) && !j.Verdict[v] {
				passed = false
			}
		}
		row := []any{j.Started, j.Ended, r.Name, j.Title, j.Kind, strings.Join(j.Variants, ", "), verdictText(j), passed}
		for _, v := range variants {
			var p *bool
			if ok, has := j.Verdict[v]; has {
				p = &ok
			}
			row = append(row, p)
		}
		row = append(row, j.Ended.Sub(j.Started).Seconds(), int64(len(j.Faults)), j.Seed, j.Platform, kv.Join(j.Settings), j.Error,
			strings.Join(j.ControlNotes(), " "))
		f.AppendRow(row...)
	}
	return answer(notices, f)
}

func probesQuery(_ context.Context, in *Instance, q backend.DataQuery, m Model) backend.DataResponse {
	runs, notices, errRes := in.selectRuns(q, m)
	if errRes != nil {
		return *errRes
	}
	f := table("probes",
		field("time", []time.Time{}, ""),
		field("run", []string{}, ""),
		field("variant", []string{}, ""),
		field("phase", []string{}, ""),
		field("probe", []string{}, ""),
		field("tolerance", []string{}, ""),
		field("observed", []string{}, ""),
		field("observed value", []*float64{}, ""),
		field("ok", []bool{}, ""),
		field("error", []string{}, ""),
	)
	for _, r := range runs {
		for _, ph := range r.J.Phases {
			if !m.wants(ph.Variant) {
				continue
			}
			for _, p := range ph.Probes {
				var v *float64
				if x, err := strconv.ParseFloat(strings.TrimSpace(p.Observed), 64); err == nil {
					v = &x
				}
				f.AppendRow(ph.At, r.Name, ph.Variant, ph.Name, p.Name, p.Tolerance, p.Observed, v, p.OK, p.Error)
			}
		}
	}
	return answer(notices, f)
}

func recoveryQuery(_ context.Context, in *Instance, q backend.DataQuery, m Model) backend.DataResponse {
	runs, notices, errRes := in.selectRuns(q, m)
	if errRes != nil {
		return *errRes
	}
	f := table("recovery",
		field("time", []time.Time{}, ""),
		field("run", []string{}, ""),
		field("fault_id", []string{}, ""),
		field("fault", []string{}, ""),
		field("variant", []string{}, ""),
		field("touched", []string{}, ""),
		field("time_to_detect", []*float64{}, unitSeconds),
		field("success_recovered", []*float64{}, unitSeconds),
		field("p99_recovered", []*float64{}, unitSeconds),
		field("lag_recovered", []*float64{}, unitSeconds),
		field("view_converged", []*float64{}, unitSeconds),
		field("failed_during_fault", []int64{}, unitCount),
		field("error_budget_burned", []float64{}, unitRatio),
		field("baseline_success_ratio", []float64{}, unitRatio),
		field("baseline_p99", []float64{}, unitSeconds),
		field("baseline_p50", []float64{}, unitSeconds),
		field("baseline_lag", []float64{}, unitCount),
		field("baseline_view_gap", []float64{}, unitCount),
		field("note", []string{}, ""),
	)
	for _, r := range runs {
		rec := r.J.Recovery
		if len(rec) == 0 && len(r.J.Faults) > 0 {
			// As the report does for journals written without them.
			rec = journal.ComputeRecovery(r.J)
			notices = append(notices, data.Notice{Severity: data.NoticeSeverityInfo, Text: "run " + r.Name + ": its journal holds no recovery metrics; computed from its samples as `lab report` does"})
		}
		faults := map[string]journal.FaultEvent{}
		for _, ev := range r.J.Faults {
			faults[ev.ID] = ev
		}
		for _, x := range rec {
			if !m.wants(x.Variant) {
				continue
			}
			ev := faults[x.FaultID]
			f.AppendRow(ev.InjectedAt, r.Name, x.FaultID, ev.Fault, x.Variant, strings.Join(x.Touched, ", "),
				seconds(x.TimeToDetect), seconds(x.SuccessRecovered), seconds(x.P99Recovered), seconds(x.LagRecovered), seconds(x.ViewConverged),
				x.FailedDuringFault, x.ErrorBudgetBurned, x.BaselineSuccessRatio, x.BaselineP99Seconds, x.BaselineP50Seconds, x.BaselineLag, x.BaselineViewGap, x.Note)
		}
	}
	return answer(notices, f)
}

func auditQuery(_ context.Context, in *Instance, q backend.DataQuery, m Model) backend.DataResponse {
	runs, notices, errRes := in.selectRuns(q, m)
	if errRes != nil {
		return *errRes
	}
	f := table("audit",
		field("time", []time.Time{}, ""),
		field("run", []string{}, ""),
		field("variant", []string{}, ""),
		field("source", []string{}, ""),
		field("verdict", []string{}, ""),
		field("ok", []bool{}, ""),
		field("checked", []bool{}, ""),
		field("acknowledged", []int64{}, unitCount),
		field("rejected", []int64{}, unitCount),
		field("failed", []int64{}, unitCount),
		field("ambiguous", []int64{}, unitCount),
		field("lost", []int64{}, unitCount),
		field("duplicates", []int64{}, unitCount),
		field("phantoms", []int64{}, unitCount),
		field("ambiguous_applied", []int64{}, unitCount),
		field("ambiguous_not_applied", []int64{}, unitCount),
		field("sum_mismatches", []int64{}, unitCount),
		field("unexpected_rejections", []int64{}, unitCount),
		field("error", []string{}, ""),
		field("notes", []string{}, ""),
	)
	for _, r := range runs {
		for _, a := range r.J.Audit {
			if !m.wants(a.Variant) {
				continue
			}
			verdict := "—"
			if ok, has := r.J.Verdict[a.Variant]; has {
				verdict = map[bool]string{true: "PASS", false: "FAIL"}[ok]
			}
			f.AppendRow(r.J.Ended, r.Name, a.Variant, a.Source, verdict, a.OK, a.Checked,
				a.Acknowledged, a.Rejected, a.Failed, a.Ambiguous, a.Lost, a.Duplicates, a.Phantoms,
				a.AmbiguousApplied, a.AmbiguousNotApplied, a.SumMismatches, a.UnexpectedRejections, a.Error, strings.Join(a.Notes, "; "))
		}
	}
	return answer(notices, f)
}

// chaosRun is the run id in an experiment's fault owner ("chaos <run>
// <step>"), which is its journal's name; "" for other owners.
func chaosRun(owner string) string {
	f := strings.Fields(owner)
	if len(f) < 2 || f[0] != "chaos" {
		return ""
	}
	return f[1]
}
