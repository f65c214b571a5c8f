package load

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// Summary is the result of a run: what `lab load` prints at the end and
// writes with --json. Durations are in milliseconds for scripts.
type Summary struct {
	RunID       string           `json:"run_id"`
	Scenario    string           `json:"scenario"`
	Seed        uint32           `json:"seed"`
	Source      string           `json:"source"`
	Schedule    string           `json:"schedule"`
	StartedAt   time.Time        `json:"started_at"`
	EndedAt     time.Time        `json:"ended_at"`
	Interrupted bool             `json:"interrupted"`
	Ledger      string           `json:"ledger,omitempty"`
	Variants    []VariantSummary `json:"variants"`
}

// VariantSummary is one variant's result.
type VariantSummary struct {
	Variant string `json:"variant"`
	Target  string `json:"target"`
	// Scheduled is how many requests the schedule holds; Sent how many
	// left (fewer only when the run was interrupted or the source ran out).
	Scheduled uint64 `json:"scheduled"`
	Sent      uint64 `json:"sent"`
	Completed uint64 `json:"completed"`
	// Outcomes and Errors count all kinds; ByKind splits outcomes per kind.
	Outcomes map[Outcome]uint64            `json:"outcomes"`
	Errors   map[Cause]uint64              `json:"errors"`
	ByKind   map[string]map[Outcome]uint64 `json:"by_kind"`
	// SuccessRate is the fraction of completed requests answered as
	// expected (2xx; 4xx for an unknown movie). Unexpected4xx counts the
	// 4xx answers to valid requests, failures like any 5xx.
	SuccessRate   float64 `json:"success_rate"`
	Unexpected4xx uint64  `json:"unexpected_4xx"`
	// Retried counts the ratings sent again with the same request id
	// because an attempt's outcome was unknown; Retries the extra sends.
	Retried uint64 `json:"retried,omitempty"`
	Retries uint64 `json:"retries,omitempty"`
	// TargetRate is the schedule's mean rate; AchievedRate is measured from
	// the send times of the first and last request.
	TargetRate   float64        `json:"target_rate"`
	AchievedRate float64        `json:"achieved_rate"`
	Latency      LatencySummary `json:"latency_ms"`
	Thresholds   ThresholdCheck `json:"thresholds"`
	// FellBehind is set when an uninterrupted run sent fewer requests than
	// scheduled: the generator (its machine) could not keep up, so the
	// result does not show what the schedule asked for.
	FellBehind bool `json:"fell_behind"`
}

// LatencySummary is in milliseconds, measured from each request's send
// time; quantiles are nearest-rank, within latency.ErrorBound (0.2 %).
type LatencySummary struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// ThresholdCheck is the scenario's thresholds applied to one variant.
type ThresholdCheck struct {
	SuccessRateMin float64 `json:"success_rate_min"`
	P99MaxMs       float64 `json:"p99_max_ms"`
	SuccessRateOK  bool    `json:"success_rate_ok"`
	P99OK          bool    `json:"p99_ok"`
}

// OK reports whether every threshold held.
func (t ThresholdCheck) OK() bool { return t.SuccessRateOK && t.P99OK }

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func buildSummary(cfg Config, runs []*variantRun, scheduled uint64, started, ended time.Time, interrupted bool) *Summary {
	s := &Summary{
		RunID:       cfg.RunID,
		Scenario:    cfg.Scenario.Name,
		Seed:        cfg.Scenario.Seed,
		Source:      cfg.SourceName,
		Schedule:    DescribeArrival(cfg.Scenario.Arrival),
		StartedAt:   started,
		EndedAt:     ended,
		Interrupted: interrupted,
	}
	targetRate := float64(scheduled) / cfg.Scenario.Arrival.TotalDuration().Seconds()
	for _, v := range runs {
		st := v.stats
		st.mu.Lock()
		vs := VariantSummary{
			Variant:       v.target.Variant,
			Target:        v.target.BaseURL,
			Scheduled:     scheduled,
			Sent:          st.sent.Load(),
			Completed:     st.done,
			Outcomes:      map[Outcome]uint64{},
			Errors:        map[Cause]uint64{},
			ByKind:        map[string]map[Outcome]uint64{},
			TargetRate:    math.Round(targetRate*100) / 100,
			Unexpected4xx: st.unexpected4,
			Retried:       st.retried,
			Retries:       st.retries,
		}
		all := st.all.Snapshot()
		vs.Latency = LatencySummary{
			Mean: ms(all.Mean()),
			P50:  ms(all.Quantile(0.50)),
			P90:  ms(all.Quantile(0.90)),
			P99:  ms(all.Quantile(0.99)),
			P999: ms(all.Quantile(0.999)),
			Max:  ms(all.Max()),
		}
		for _, k := range Kinds {
			byOutcome := map[Outcome]uint64{}
			for i, o := range Outcomes {
				byOutcome[o] = st.outcomes[k][i]
				vs.Outcomes[o] += st.outcomes[k][i]
			}
			vs.ByKind[k.String()] = byOutcome
		}
		for c, n := range st.causes {
			vs.Errors[c] = n
		}
		if st.done > 0 {
			vs.SuccessRate = float64(st.asExpected) / float64(st.done)
		}
		if span := st.lastSent.Sub(st.firstSent); vs.Sent > 1 && span > 0 {
			// n requests evenly spaced span apart: (n-1) intervals.
			vs.AchievedRate = math.Round(float64(vs.Sent-1)/span.Seconds()*100) / 100
		}
		st.mu.Unlock()
		vs.FellBehind = !interrupted && vs.Sent < vs.Scheduled
		th := cfg.Scenario.Thresholds
		vs.Thresholds = ThresholdCheck{
			SuccessRateMin: th.SuccessRate,
			P99MaxMs:       th.P99Ms,
			SuccessRateOK:  vs.Completed > 0 && vs.SuccessRate >= th.SuccessRate,
			P99OK:          vs.Completed > 0 && vs.Latency.P99 <= th.P99Ms,
		}
		s.Variants = append(s.Variants, vs)
	}
	return s
}

// DescribeArrival says a schedule in words: "constant 200/s for 1m".
func DescribeArrival(a Arrival) string {
	if a.Executor == ExecutorConstant {
		return fmt.Sprintf("constant %s/s for %s", fmtRate(a.Rate), shortDuration(a.Duration.D()))
	}
	parts := []string{fmt.Sprintf("ramping from %s/s", fmtRate(a.StartRate))}
	for _, st := range a.Stages {
		parts = append(parts, fmt.Sprintf("to %s/s over %s", fmtRate(st.Target), shortDuration(st.Duration.D())))
	}
	return strings.Join(parts, ", ")
}

func fmtRate(r float64) string {
	if r == math.Trunc(r) {
		return fmt.Sprintf("%.0f", r)
	}
	return fmt.Sprintf("%.2f", r)
}

// WriteTable prints the summary for people.
func (s *Summary) WriteTable(w io.Writer) error {
	state := "completed"
	if s.Interrupted {
		state = "INTERRUPTED"
	}
	source := ""
	if s.Source != "scenario" {
		source = ", replaying " + strings.TrimPrefix(s.Source, "file:")
	}
	fmt.Fprintf(w, "run %s: scenario %s, seed %d%s, %s: %s\n", s.RunID, s.Scenario, s.Seed, source, s.Schedule, state)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "variant\tsent\tok\t4xx (unexpected)\t5xx\tambiguous\tnot sent\tsuccess\trate/s\tp50 ms\tp99 ms\tmax ms\tthresholds\t")
	for _, v := range s.Variants {
		th := "pass"
		if !v.Thresholds.OK() {
			var why []string
			if !v.Thresholds.SuccessRateOK {
				why = append(why, fmt.Sprintf("success<%.3g", v.Thresholds.SuccessRateMin))
			}
			if !v.Thresholds.P99OK {
				why = append(why, fmt.Sprintf("p99>%gms", v.Thresholds.P99MaxMs))
			}
			th = "FAIL " + strings.Join(why, ",")
		}
		fmt.Fprintf(tw, "%s\t%d/%d\t%d\t%d (%d)\t%d\t%d\t%d\t%.2f%%\t%.1f\t%.1f\t%.1f\t%.1f\t%s\t\n",
			v.Variant, v.Sent, v.Scheduled, v.Outcomes[Acknowledged], v.Errors[CauseHTTP4xx], v.Unexpected4xx, v.Errors[CauseHTTP5xx],
			v.Outcomes[Ambiguous], v.Errors[CauseNotSent], v.SuccessRate*100, v.AchievedRate,
			v.Latency.P50, v.Latency.P99, v.Latency.Max, th)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, v := range s.Variants {
		if v.Retried > 0 {
			fmt.Fprintf(w, "%s: %d rating(s) of unknown outcome sent again with the same request id (%d retries in all); the ledger lists their attempts\n", v.Variant, v.Retried, v.Retries)
		}
	}
	for _, v := range s.Variants {
		if v.FellBehind {
			fmt.Fprintf(w, "warning: %s: only %d of %d scheduled requests were sent — the load generator could not keep up; lower --rate or run it on a less busy machine\n", v.Variant, v.Sent, v.Scheduled)
		}
	}
	if s.Ledger != "" {
		_, err := fmt.Fprintf(w, "ledger: %s\n", s.Ledger)
		return err
	}
	return nil
}
