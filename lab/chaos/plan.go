package chaos

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ratingslab/lab/lab/faults"
	"github.com/ratingslab/lab/lab/load"
	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/lab/supervisor"
	"github.com/ratingslab/lab/services/lib/variantname"
)

// Lab is what validation needs to know about the lab an experiment will run
// on. A running lab provides it (its fault catalog and options); without one,
// DefaultLab describes a lab started with `lab up` and no flags.
type Lab struct {
	Targets faults.Targets
	// Breakers and Delivery are the lab's `lab up` switches.
	Breakers bool
	Delivery string
	// Kafka is the lab's Kafka platform (embedded, cluster, external).
	Kafka string
	// Replicas are the lab's replica counts (lab up --replicas); a part
	// not named runs one.
	Replicas map[string]int
	// ScenarioDirs are searched for a bare load.scenario name, in order.
	ScenarioDirs []fs.FS
	// IgnoreRequires skips the requires checks (validating without a lab).
	IgnoreRequires bool
}

// Plan is a checked experiment: everything the runner needs, all found
// valid before anything is injected.
type Plan struct {
	Exp      *Experiment
	Variants []string
	Scenario *load.Scenario
	// LoadDuration is the length of the load; the schedule is relative to
	// its start.
	LoadDuration time.Duration
	Steps        []PlannedStep
	// Actions are the method's actions (movie-add), in file order.
	Actions []PlannedAction
	Probes  []PlannedProbe
	// FirstFault and LastHeal bound the faults: "before" ends at FirstFault,
	// "during" runs to LastHeal, "after" starts at LastHeal + recovery.
	FirstFault, LastHeal time.Duration
}

// PlannedStep is one method step resolved for every selected variant.
type PlannedStep struct {
	Index int
	// ID names the step in the journal and the progress: "m1", "m2", ...
	ID    string
	Fault string
	At    time.Duration
	For   time.Duration
	// Instant steps take effect once (poison) and have no heal.
	Instant bool
	Params  map[string]string
	// Variants maps each selected variant to its concrete faults.
	Variants map[string]VariantFaults
}

// End is when the step's faults heal (At for an instant step).
func (s PlannedStep) End() time.Duration { return s.At + s.For }

// VariantFaults are one variant's concrete faults for a step; when there is
// no equivalent, NotApplicable says why.
type VariantFaults struct {
	Requests      []faults.Request
	NotApplicable string
}

// PlannedProbe is a probe with its tolerances parsed.
type PlannedProbe struct {
	Probe
	kind     probeKind
	tol      bound
	during   bound
	skip     bool // not checked during faults
	variants []string
	Label    string
}

// Applies says whether the probe is checked for a variant.
func (p PlannedProbe) Applies(variant string) bool { return slices.Contains(p.variants, variant) }

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// MinAfterWindow is the shortest "after" window the schedule must leave.
const MinAfterWindow = 2 * time.Second

// Validate checks an experiment against a lab. variants, when not empty,
// replaces the file's variants (`--variants`). Every error names the field
// and its line.
func Validate(e *Experiment, lab Lab, variants []string) (*Plan, error) {
	p := &Plan{Exp: e}
	if e.Title == "" {
		return nil, e.fieldErr("title", "must not be empty")
	}
	// Variants.
	field, chosen := "variants", e.Variants
	if len(variants) > 0 {
		field, chosen = "--variants", variants
	}
	if len(chosen) == 0 {
		chosen = variantname.All
	}
	for i, v := range chosen {
		if !slices.Contains(variantname.All, v) {
			return nil, fieldOrFlag(e, field, i, "unknown variant %q (valid: %s)", v, strings.Join(variantname.All, ", "))
		}
		if slices.Contains(chosen[:i], v) {
			return nil, fieldOrFlag(e, field, i, "%s is listed twice", v)
		}
	}
	p.Variants = chosen

	// Lab switches.
	if want := e.Requires.Breakers; want != "" && !lab.IgnoreRequires {
		have := map[bool]string{true: "on", false: "off"}[lab.Breakers]
		if want != have {
			return nil, e.fieldErr("requires.breakers", "this experiment needs the RPC variant's circuit breakers %s, and this lab runs them %s; switch them at runtime with: lab breakers %s", want, have, want)
		}
	}
	if want := e.Requires.Delivery; want != "" {
		if want != "effectively-once" && want != "at-least-once" && want != "transactional" {
			return nil, e.fieldErr("requires.delivery", "want effectively-once, at-least-once or transactional, got %q", want)
		}
		if !lab.IgnoreRequires && lab.Delivery != "" && lab.Delivery != want {
			return nil, e.fieldErr("requires.delivery", "this experiment needs ratings-stream in %s mode, and this lab runs %s; restart it with: lab down && lab up --delivery=%s", want, lab.Delivery, want)
		}
	}

	if want := e.Requires.Kafka; want != "" {
		if want != "embedded" && want != "cluster" {
			return nil, e.fieldErr("requires.kafka", "want embedded or cluster, got %q", want)
		}
		if have := cmpOr(lab.Kafka, "embedded"); !lab.IgnoreRequires && have != want {
			return nil, e.fieldErr("requires.kafka", "this experiment needs the Kafka platform %s, and this lab runs %s; restart it with: lab down && lab up --kafka %s", want, have, want)
		}
	}

	if want := e.Requires.Replicas; want != "" {
		part, n, err := parseReplicas(want)
		if err != nil {
			return nil, e.fieldErr("requires.replicas", "%v", err)
		}
		if have := max(lab.Replicas[part], 1); !lab.IgnoreRequires && have < n {
			return nil, e.fieldErr("requires.replicas", "this experiment needs %d replicas of %s, and this lab runs %d; restart it with: lab down && lab up --replicas %s=%d", n, part, have, part, n)
		}
	}

	// Load.
	if err := p.resolveLoad(lab); err != nil {
		return nil, err
	}
	ss := e.SteadyState
	if ss.Window <= 0 {
		return nil, e.fieldErr("steady_state.window", "must be more than 0")
	}
	if w := ss.Window.D(); w%time.Second != 0 {
		// The probes read one sample a second: a window is whole samples.
		return nil, e.fieldErr("steady_state.window", "must be a whole number of seconds (samples are taken each second), got %s", ss.Window)
	}
	if e.Drain.D() > MaxDrain {
		return nil, e.fieldErr("drain", "at most %s, got %s", MaxDrain, e.Drain)
	}

	// Probes.
	checkedBy := map[string]int{} // label + "\x00" + variant → probe index
	for i, pr := range ss.Probes {
		path := fmt.Sprintf("steady_state.probes[%d]", i)
		k, ok := lookupProbe(pr.Probe)
		if !ok {
			return nil, e.fieldErr(path+".probe", "unknown probe %q (valid: %s)", pr.Probe, strings.Join(probeNames(), ", "))
		}
		tol, err := k.parseBound(pr.Min, pr.Max)
		if err != nil {
			return nil, e.fieldErr(path+"."+boundField(pr.Min, pr.Max), "%v", err)
		}
		if k.name == "audit" {
			tol = bound{set: true, v: 0, text: "0"} // no finding at all
		}
		if slo := LabSLO.Tolerance(k.name); slo != "" && pr.Why == "" && pr.Min+pr.Max != "" {
			if want, _ := k.parseBound("", ""); want.v != tol.v {
				return nil, e.fieldErr(path+"."+boundField(pr.Min, pr.Max),
					"%s departs from the lab's SLO (%s %s %s, experiments/README.md \"The SLO\"): leave it out to use the SLO, or say why in %s.why",
					tol.text, k.name, map[bool]string{true: ">=", false: "<="}[tol.min], slo, path)
			}
		}
		pp := PlannedProbe{Probe: pr, kind: k, tol: tol, during: tol, skip: pr.DuringSkip}
		if pr.During != nil {
			if !k.windowed {
				return nil, e.fieldErr(path+".during", "%s is checked after the drain only", k.name)
			}
			if pp.during, err = k.parseBound(pr.During.Min, pr.During.Max); err != nil {
				return nil, e.fieldErr(path+".during."+boundField(pr.During.Min, pr.During.Max), "%v", err)
			}
		}
		pp.variants = p.Variants
		if len(pr.Variants) > 0 {
			pp.variants = nil
			for j, v := range pr.Variants {
				if !slices.Contains(variantname.All, v) {
					return nil, e.fieldErr(fmt.Sprintf("%s.variants[%d]", path, j), "unknown variant %q (valid: %s)", v, strings.Join(variantname.All, ", "))
				}
				if slices.Contains(p.Variants, v) {
					pp.variants = append(pp.variants, v)
				}
			}
		}
		if k.only != nil {
			var keep []string
			for _, v := range pp.variants {
				if slices.Contains(k.only, v) {
					keep = append(keep, v)
				}
			}
			if len(pr.Variants) > 0 && len(keep) == 0 {
				return nil, e.fieldErr(path+".variants", "%s applies to %s only", k.name, strings.Join(k.only, ", "))
			}
			pp.variants = keep
		}
		pp.Label = pr.Name
		if pp.Label == "" {
			pp.Label = k.name
		}
		// The same probe twice for a variant: two verdicts under one label,
		// and the tighter tolerance silently wins.
		for _, v := range pp.variants {
			key := pp.Label + "\x00" + v
			if j, dup := checkedBy[key]; dup {
				return nil, e.fieldErr(path, "%s is already checked for %s by steady_state.probes[%d]; merge them, or give each its own name or variants", pp.Label, v, j)
			}
			checkedBy[key] = i
		}
		p.Probes = append(p.Probes, pp)
	}

	// Method.
	if len(e.Method) == 0 {
		return nil, e.fieldErr("method", "is empty: at least one fault")
	}
	for i, st := range e.Method {
		if st.Action != "" {
			if err := p.resolveAction(i, st); err != nil {
				return nil, err
			}
			continue
		}
		ps, err := p.resolveStep(i, st, lab.Targets)
		if err != nil {
			return nil, err
		}
		p.Steps = append(p.Steps, ps)
	}
	if len(p.Steps) == 0 {
		return nil, e.fieldErr("method", "has no fault: at least one (actions such as movie-add happen beside faults)")
	}
	if err := p.checkSchedule(); err != nil {
		return nil, err
	}
	if err := p.scheduleActions(); err != nil {
		return nil, err
	}

	// Rollbacks.
	for i, rb := range e.Rollbacks {
		path := fmt.Sprintf("rollbacks[%d]", i)
		switch supervisor.Action(rb.Action) {
		case supervisor.ActionStart, supervisor.ActionResume, supervisor.ActionRestart:
			if !slices.Contains(lab.Targets.Parts, rb.Part) {
				return nil, e.fieldErr(path+".part", "%q is not a part of this lab (parts: %s)", rb.Part, strings.Join(lab.Targets.Parts, ", "))
			}
		case "heal-all":
			if rb.Part != "" {
				return nil, e.fieldErr(path+".part", "heal-all takes no part")
			}
		default:
			return nil, e.fieldErr(path+".action", "unknown action %q (valid: start, resume, restart, heal-all)", rb.Action)
		}
	}
	return p, nil
}

func boundField(minText, maxText string) string {
	if minText != "" {
		return "min"
	}
	if maxText != "" {
		return "max"
	}
	return "probe"
}

func fieldOrFlag(e *Experiment, field string, i int, format string, args ...any) error {
	if field == "--variants" {
		return fmt.Errorf("--variants: "+format, args...)
	}
	return e.fieldErr(fmt.Sprintf("%s[%d]", field, i), format, args...)
}

// resolveLoad finds the scenario (a bare name in the scenario dirs, or a
// file relative to the experiment) and applies the overrides.
func (p *Plan) resolveLoad(lab Lab) error {
	e := p.Exp
	name := e.Load.Scenario
	if strings.ContainsAny(name, `/\`) || filepath.Ext(name) != "" {
		if !filepath.IsAbs(name) && e.File != "" {
			name = filepath.Join(filepath.Dir(e.File), name)
		}
	}
	s, err := load.FindScenario(name, os.ReadFile, lab.ScenarioDirs...)
	if err != nil {
		return e.fieldErr("load.scenario", "%s", strings.TrimPrefix(err.Error(), "--scenario "))
	}
	s, err = s.Apply(load.Overrides{Rate: e.Load.Rate, Duration: e.Load.Duration.D(), Seed: e.Load.Seed})
	if err != nil {
		return e.fieldErr("load", "%s", strings.TrimPrefix(err.Error(), "--"))
	}
	if err := load.CheckBounds(s.Arrival, false); err != nil {
		return e.fieldErr("load", "%v", err)
	}
	p.Scenario = s
	p.LoadDuration = s.Arrival.TotalDuration()
	return nil
}

// resolveStep turns one method step into concrete fault requests per
// variant, each validated against the catalog and the lab's targets.
func (p *Plan) resolveStep(i int, st Step, t faults.Targets) (PlannedStep, error) {
	e := p.Exp
	path := fmt.Sprintf("method[%d]", i)
	ps := PlannedStep{Index: i, ID: fmt.Sprintf("m%d", i+1), Fault: st.Fault, At: st.At.D(), For: st.For.D(),
		Params: st.Params, Variants: map[string]VariantFaults{}}

	eq, isEquivalent := LookupEquivalent(st.Fault)
	kind, kerr := faults.Lookup(st.Fault)
	switch {
	case isEquivalent:
		if st.Target != "" || st.Targets != nil {
			return ps, e.fieldErr(targetPath(path, st, ""), "%s is an equivalent from the mapping table: its targets are fixed (give a catalog fault such as latency to choose targets)", st.Fault)
		}
		// Every param must feed some action of the equivalent.
		accepted := map[string]bool{}
		for _, acts := range eq.Actions {
			for _, a := range acts {
				k, _ := faults.Lookup(a.Fault)
				for _, n := range k.ParamNames() {
					accepted[n] = true
				}
			}
		}
		for name := range st.Params {
			if !accepted[name] {
				return ps, e.fieldErr(path+".params."+name, "%s takes no parameter %q (valid: %s)", st.Fault, name, strings.Join(sortedKeys(accepted), ", "))
			}
		}
		instant := true
		for _, acts := range eq.Actions {
			for _, a := range acts {
				k, _ := faults.Lookup(a.Fault)
				if !k.InstantFor(st.For.D()) { // restart with for: down until healed
					instant = false
				}
			}
		}
		ps.Instant = instant
		for _, v := range p.Variants {
			if why, na := eq.NotApplicable[v]; na {
				ps.Variants[v] = VariantFaults{NotApplicable: why}
				continue
			}
			reqs, err := resolveActions(eq, v, st.Params, t)
			if err != nil {
				return ps, e.fieldErr(path+".fault", "%v", err)
			}
			ps.Variants[v] = VariantFaults{Requests: reqs}
		}
	case kerr == nil:
		ps.Instant = kind.InstantFor(st.For.D())
		targets := st.Targets
		if st.Target != "" {
			v := t.Variants[st.Target]
			if kind.Targets == faults.TargetTopic || kind.Targets == faults.TargetKafka || kind.Targets == faults.TargetGroup {
				v = variantname.Stream
			}
			if v == "" || v == "lab" {
				return ps, e.fieldErr(path+".target", "%q belongs to no variant; use targets: {rpc: ..., stream: ...} to say which variant it stands for", st.Target)
			}
			targets = map[string]string{v: st.Target}
		}
		if len(targets) == 0 {
			return ps, e.fieldErr(path+".targets", "%s is a catalog fault: give target, or targets per variant (valid targets: %s)", kind.Name, strings.Join(t.For(kind), ", "))
		}
		for _, v := range slices.Sorted(maps.Keys(targets)) {
			tg := targets[v]
			if !slices.Contains(variantname.All, v) {
				return ps, e.fieldErr(path+".targets."+v, "unknown variant %q (valid: %s)", v, strings.Join(variantname.All, ", "))
			}
			if err := t.Check(kind, tg); err != nil {
				return ps, e.fieldErr(targetPath(path, st, v), "%v", err)
			}
			if owner := targetVariant(t, kind, tg); owner != v {
				return ps, e.fieldErr(targetPath(path, st, v), "%q belongs to the %s variant, not %s: a step's target for a variant must be one of that variant's edges or parts (valid for %s: %s)",
					tg, owner, v, v, strings.Join(variantTargets(t, kind, v), ", "))
			}
		}
		for _, v := range p.Variants {
			tg, ok := targets[v]
			if !ok {
				ps.Variants[v] = VariantFaults{NotApplicable: "the step names no target in this variant"}
				continue
			}
			ps.Variants[v] = VariantFaults{Requests: []faults.Request{{Fault: kind.Name, Target: tg, Params: st.Params}}}
		}
	default:
		return ps, e.fieldErr(path+".fault", "unknown fault %q: want an equivalent (%s) or a catalog fault (%s)", st.Fault,
			strings.Join(EquivalentNames(), ", "), strings.Join(faults.Names(), ", "))
	}

	// Durations: every lasting fault must end before the load does.
	if ps.Instant && st.For > 0 {
		return ps, e.fieldErr(path+".for", "%s takes effect once and has nothing to heal; drop for", st.Fault)
	}
	if !ps.Instant && st.For <= 0 {
		return ps, e.fieldErr(path+".for", "is required: how long %s lasts (it must heal before the load ends)", st.Fault)
	}
	// Each concrete request must pass the catalog with the lab's targets.
	for _, v := range p.Variants {
		for j, req := range ps.Variants[v].Requests {
			if st.For > 0 {
				req.For = st.For.String()
			}
			if _, params, _, err := faults.Validate(req, t); err != nil {
				return ps, e.fieldErr(stepErrPath(path, err), "%s in the %s variant: %v", req.Fault, v, err)
			} else {
				req.Params = faults.ParamValues(params)
			}
			ps.Variants[v].Requests[j] = req
		}
	}
	return ps, nil
}

// targetVariant is the variant a fault target belongs to. The broker (and
// the lab's other shared infrastructure) and the topics serve the log
// variant only.
func targetVariant(t faults.Targets, kind faults.Kind, target string) string {
	if kind.Targets == faults.TargetTopic {
		return variantname.Stream
	}
	switch v := t.Variants[target]; v {
	case variantname.RPC, variantname.Stream:
		return v
	}
	return variantname.Stream
}

// variantTargets lists the valid targets of a fault in one variant.
func variantTargets(t faults.Targets, kind faults.Kind, variant string) []string {
	var out []string
	for _, tg := range t.For(kind) {
		if targetVariant(t, kind, tg) == variant {
			out = append(out, tg)
		}
	}
	return out
}

func targetPath(path string, st Step, v string) string {
	switch {
	case st.Target != "":
		return path + ".target"
	case v == "":
		return path + ".targets"
	}
	return path + ".targets." + v
}

// stepErrPath points a catalog error at the step's field.
func stepErrPath(path string, err error) string {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "params."); ok {
		if i := strings.IndexByte(name, ':'); i > 0 {
			return path + ".params." + name[:i]
		}
	}
	if strings.HasPrefix(msg, "for:") {
		return path + ".for"
	}
	if strings.HasPrefix(msg, "target") {
		return path + ".targets"
	}
	return path + ".fault"
}

// checkSchedule places the faults inside the load: after the warmup (so
// the steady state is checked before), healed early enough to check it
// after, and never two process faults on one part, or the same fault on one
// target, at the same time.
func (p *Plan) checkSchedule() error {
	e := p.Exp
	ss := e.SteadyState
	p.FirstFault, p.LastHeal = -1, 0
	for _, s := range p.Steps {
		path := fmt.Sprintf("method[%d]", s.Index)
		if s.At <= ss.Warmup.D() {
			return e.fieldErr(path+".at", "%s starts at %s, within the warmup (steady_state.warmup %s): the steady state must be checked before the first fault", s.Fault, s.At, ss.Warmup)
		}
		if p.FirstFault < 0 || s.At < p.FirstFault {
			p.FirstFault = s.At
		}
		p.LastHeal = max(p.LastHeal, s.End())
	}
	if need := p.LastHeal + ss.Recovery.D() + MinAfterWindow; need > p.LoadDuration {
		last := p.Steps[0]
		for _, s := range p.Steps {
			if s.End() == p.LastHeal {
				last = s
			}
		}
		field := fmt.Sprintf("method[%d].for", last.Index)
		if last.Instant {
			field = fmt.Sprintf("method[%d].at", last.Index)
		}
		return e.fieldErr(field, "the last fault ends at %s; the load (%s) must run on for steady_state.recovery (%s) and %s more so the steady state can be checked after it: shorten the faults or set load.duration to at least %s",
			p.LastHeal, p.LoadDuration, ss.Recovery, MinAfterWindow, need)
	}
	// Overlaps.
	steps := slices.Clone(p.Steps)
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].At < steps[j].At })
	for i, a := range steps {
		for _, b := range steps[i+1:] {
			if b.At >= a.End() && !(a.Instant && b.At == a.At) {
				continue
			}
			for _, v := range p.Variants {
				for _, ra := range a.Variants[v].Requests {
					for _, rb := range b.Variants[v].Requests {
						ka, _ := faults.Lookup(ra.Fault)
						kb, _ := faults.Lookup(rb.Fault)
						if ra.Target != rb.Target || ka.Instant || kb.Instant {
							continue
						}
						if ra.Fault == rb.Fault || (ka.Targets == faults.TargetPart && kb.Targets == faults.TargetPart) {
							return e.fieldErr(fmt.Sprintf("method[%d].at", b.Index), "overlaps method[%d] on %s in the %s variant (%s and %s at the same time); a target takes one such fault at a time",
								a.Index, ra.Target, v, ra.Fault, rb.Fault)
						}
					}
				}
			}
		}
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// parseReplicas reads a requires.replicas value: part=N, N at least 2.
func parseReplicas(s string) (string, int, error) {
	part, count, ok := strings.Cut(s, "=")
	n, err := strconv.Atoi(count)
	if !ok || part == "" || err != nil || n < 2 {
		return "", 0, fmt.Errorf("want part=N with N at least 2 (as lab up --replicas takes it), got %q", s)
	}
	return part, n, nil
}

// RequiredOptions are the lab options an experiment's requires name (its
// Kafka platform, its replicas): the lab to validate it against when no
// lab runs.
func RequiredOptions(e *Experiment) parts.Options {
	o := parts.Options{Kafka: parts.KafkaOptions{Platform: e.Requires.Kafka}}
	if part, n, err := parseReplicas(e.Requires.Replicas); err == nil {
		o.Replicas = map[string]int{part: n}
	}
	return o
}
