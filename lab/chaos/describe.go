package chaos

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ratingslab/lab/lab/kv"
	"github.com/ratingslab/lab/lab/load"
)

// Describe is what the plan will do, for `lab chaos validate` and the start
// of a run: the variants, the load and the resilience runs, then every
// method step in time order, faults (with each variant's concrete faults) and actions alike.
func (p *Plan) Describe() []string {
	out := []string{fmt.Sprintf("variants %s; load %s, %s", strings.Join(p.Variants, ", "), p.Scenario.Name, load.DescribeArrival(p.Scenario.Arrival))}
	if r := p.describeResilience(); r != "" {
		out = append(out, r)
	}
	type line struct {
		at    time.Duration
		index int
		text  []string
	}
	var steps []line
	for _, s := range p.Steps {
		when := fmt.Sprintf("+%s → +%s", s.At, s.End())
		if s.Instant {
			when = fmt.Sprintf("+%s (once)", s.At)
		}
		text := []string{fmt.Sprintf("%-4s %-16s fault %s", s.ID, when, s.Fault)}
		for _, v := range p.Variants {
			text = append(text, fmt.Sprintf("%-4s %-16s   %s: %s", "", "", v, s.Variants[v].describe()))
		}
		steps = append(steps, line{s.At, s.Index, text})
	}
	for _, a := range p.Actions {
		steps = append(steps, line{a.At, a.Index, []string{fmt.Sprintf("%-4s %-16s %s", a.ID, fmt.Sprintf("+%s", a.At), a.describe())}})
	}
	slices.SortStableFunc(steps, func(a, b line) int { return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.index, b.index)) })
	out = append(out, fmt.Sprintf("method: %s (offsets from the start of the load)", countSteps(len(p.Steps), len(p.Actions))))
	for _, s := range steps {
		for _, t := range s.text {
			out = append(out, "  "+t)
		}
	}
	return out
}

func countSteps(faults, actions int) string {
	plural := func(n int, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	if actions == 0 {
		return plural(faults, "fault")
	}
	return plural(faults, "fault") + ", " + plural(actions, "action")
}

// describe names one variant's concrete faults of a step.
func (vf VariantFaults) describe() string {
	if vf.NotApplicable != "" {
		return "nothing (" + vf.NotApplicable + ")"
	}
	var parts []string
	for _, r := range vf.Requests {
		s := r.Fault + " " + r.Target
		if len(r.Params) > 0 {
			s += " (" + kv.Join(r.Params) + ")"
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, "; ")
}

// describe says what an action does and what the run expects of it.
func (a PlannedAction) describe() string {
	m := a.Movie
	id := "the next free id"
	if m.ID > 0 {
		id = fmt.Sprintf("id %d", m.ID)
	}
	return fmt.Sprintf("action %s: %q (%d), %s; %.0f%% of the ratings from then on rate it; a refusal (422) is owed at most until +%s",
		a.Action, m.Title, m.ReleaseYear, id, a.Share*100, a.RefuseUntil)
}
