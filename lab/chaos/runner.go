package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ratingslab/lab/lab/audit"
	"github.com/ratingslab/lab/lab/faults"
	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/load"
	"github.com/ratingslab/lab/lab/load/ledger"
	"github.com/ratingslab/lab/lab/sampler"
	"github.com/ratingslab/lab/lab/supervisor"
	"github.com/ratingslab/lab/services/lib/duration"
	"github.com/ratingslab/lab/services/lib/metricname"
	"github.com/ratingslab/lab/services/lib/variantname"
)

// Env is the running lab an experiment runs on.
type Env struct {
	Dir     layout.Dir
	Control *supervisor.Client
	Faults  *faults.Client
	Targets faults.Targets
	// APIs maps each variant to its webserver's base URL.
	APIs map[string]string
	// ControlMetrics is the supervisor's /metrics URL (lab_part_up).
	ControlMetrics string
	// Brokers are the broker addresses to read the log from outside the
	// processes (consumer lag, dead letters): direct, never a part's edge
	// proxy, so a fault on an edge does not blind the measurement.
	Brokers []string
	// LoadMetricsAddr, when set, serves the load generator's metrics there
	// during the run (the lab's `lab load` port, scraped by Prometheus); a
	// busy port fails the run before any load, as it fails `lab load`.
	LoadMetricsAddr string
	// Settings are lab switches recorded in the journal.
	Settings map[string]string
	// Platform is the lab's Kafka platform, recorded in the journal.
	Platform string
	// Name is the run's name (the experiment file's stem).
	Name string
	// Out receives progress and event lines; TTY rewrites the progress line.
	Out io.Writer
	TTY bool
}

// Result is a finished (or interrupted) run.
type Result struct {
	Journal     journal.Journal
	JournalPath string
}

// Held reports whether every variant's hypothesis held.
func (r *Result) Held() bool {
	if r.Journal.Error != "" || len(r.Journal.Verdict) == 0 {
		return false
	}
	for _, ok := range r.Journal.Verdict {
		if !ok {
			return false
		}
	}
	return true
}

// run is one execution of a plan.
type run struct {
	p     *Plan
	env   Env
	store *store
	runID string
	t0    time.Time

	mu       sync.Mutex
	events   map[string]*journal.FaultEvent // by step id + "/" + variant
	injected map[string]bool                // supervisor fault ids, true once healed
	active   map[string]string              // step id → fault name, while active (progress)
	notes    []string
	rolled   bool
	// metrics are the load generator's (retries for the progress line).
	metrics *load.Metrics
	// catalog is the method's movie-add, nil without one.
	catalog *catalogRun
}

// Preflight checks the lab can take the experiment: nothing else injected,
// every part of the chosen variants healthy, the webservers reachable.
func Preflight(ctx context.Context, p *Plan, env Env, healthBound time.Duration) error {
	l, err := env.Faults.List(ctx)
	if err != nil {
		return fmt.Errorf("the lab's fault API: %w", err)
	}
	if len(l.Active) > 0 {
		var fs []string
		for _, f := range l.Active {
			fs = append(fs, fmt.Sprintf("%s %s on %s", f.ID, f.Fault, f.Target))
		}
		return fmt.Errorf("faults are already active in the lab (%s): the result would mix them in; heal them first with 'lab chaos heal --all'", strings.Join(fs, ", "))
	}
	deadline := time.Now().Add(healthBound)
	for {
		ps, err := env.Control.Parts(ctx)
		if err != nil {
			return fmt.Errorf("the lab's control API: %w", err)
		}
		var bad []string
		for _, st := range ps {
			v := env.Targets.Variants[st.Name]
			if v == "" || (v != "lab" && !slices.Contains(p.Variants, v)) {
				continue
			}
			if v == "lab" && !slices.Contains(p.Variants, variantname.Stream) {
				continue // the broker only matters to the log variant
			}
			if st.Health != supervisor.HealthOK {
				bad = append(bad, fmt.Sprintf("%s is %s", st.Name, st.Health))
			}
		}
		if len(bad) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not every part is healthy after %s (%s): see 'lab status'", healthBound, strings.Join(bad, ", "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	var targets []load.Target
	for _, v := range p.Variants {
		targets = append(targets, load.Target{Variant: v, BaseURL: env.APIs[v]})
	}
	return load.CheckReachable(ctx, targets, 3*time.Second)
}

// Run executes a validated plan on the lab: load on every chosen variant,
// the faults on schedule, the hypothesis checked throughout, a drain, the
// audit, and the journal. When ctx is cancelled (Ctrl-C) it heals every
// fault it injected, runs the rollbacks, writes what it has and returns.
// The error is non-nil only when the run could not be carried out; a
// hypothesis that did not hold is in the result.
func Run(ctx context.Context, p *Plan, env Env) (*Result, error) {
	if env.Out == nil {
		env.Out = io.Discard
	}
	r := &run{p: p, env: env, events: map[string]*journal.FaultEvent{}, injected: map[string]bool{}, active: map[string]string{}}
	name := env.Name
	if name == "" {
		name = "experiment"
	}
	r.runID = load.NewRunID(name, time.Now())
	jpath, ledgerPath, err := r.paths()
	if err != nil {
		return nil, err
	}

	catalog, err := openCatalogEdit(ctx, p, env.Dir.LegacyDB())
	if err != nil {
		return nil, err
	}
	r.catalog = catalog
	defer catalog.close()

	// Whatever happens below, nothing this run injected outlives it.
	defer r.cleanup()

	reg := prometheus.NewRegistry()
	metrics, err := load.NewMetrics(reg, p.Variants)
	if err != nil {
		return nil, err
	}
	r.metrics = metrics
	if env.LoadMetricsAddr != "" {
		stopMetrics, err := load.ServeMetrics(env.LoadMetricsAddr, reg)
		if err != nil {
			return nil, err
		}
		defer stopMetrics()
	}

	client := &http.Client{Timeout: 5 * time.Second}
	apis := map[string]string{}
	for _, v := range p.Variants {
		apis[v] = env.APIs[v]
	}
	j := r.newJournal(ledgerPath)

	// Baseline, then sampling.
	s, err := r.newSampling(apis)
	if err != nil {
		return nil, err
	}
	defer s.closeLogs()
	j.LagSource = s.lagSource
	j.Baseline = observeSettled(ctx, client, env.Dir, p.Variants, apis, s.logs, env.Out)
	s.start(ctx, r.store)
	defer s.cancel()

	// Load and schedule. Ctrl-C heals at once, not after the load's grace
	// period.
	defer r.healOnCancel(ctx)()
	lr, loadEnd, stopProgress := r.loadAndSchedule(ctx, &j, ledgerPath, s.meter)
	interrupted := ctx.Err() != nil
	if lr.err != nil && !interrupted {
		stopProgress()
		return nil, fmt.Errorf("load: %w", lr.err)
	}

	// Drain and audit.
	if !interrupted {
		r.rollbacks()
		r.drain(ctx, loadEnd)
		interrupted = ctx.Err() != nil
	}
	stopProgress()
	s.stop()
	drained := time.Now()
	r.cleanup() // heals anything left (interrupted runs), then rollbacks

	var entries []ledger.Entry // the ratings, for the catalog edit's figures
	if !interrupted {
		entries = r.auditLedger(&j, client, apis, ledgerPath)
	}

	// Journal.
	rt := runTimes{t0: r.t0, loadEnd: loadEnd, drained: drained, interrupted: interrupted}
	r.conclude(&j, rt, entries, reg)
	if err := journal.Write(jpath, j); err != nil {
		return nil, err
	}
	return &Result{Journal: j, JournalPath: jpath}, nil
}

// paths creates the journal and ledger folders and names this run's files.
func (r *run) paths() (jpath, ledgerPath string, err error) {
	if err := os.MkdirAll(r.env.Dir.Journals(), 0o755); err != nil {
		return "", "", fmt.Errorf("journals: %w", err)
	}
	if err := os.MkdirAll(r.env.Dir.Ledgers(), 0o755); err != nil {
		return "", "", fmt.Errorf("ledgers: %w", err)
	}
	return filepath.Join(r.env.Dir.Journals(), r.runID+".json"), filepath.Join(r.env.Dir.Ledgers(), r.runID+".jsonl"), nil
}

// newJournal starts the run's journal with what is known before it starts,
// and announces the run.
func (r *run) newJournal(ledgerPath string) journal.Journal {
	p, env := r.p, r.env
	j := journal.Journal{
		Version: journal.CurrentVersion, Kind: journal.KindExperiment, Title: p.Exp.Title,
		Seed: uint64(p.Scenario.Seed), Variants: p.Variants, Settings: env.Settings, Platform: env.Platform, SLO: p.slo(), Objective: LabSLO.String(),
		Ledger: ledgerPath, Faults: []journal.FaultEvent{}, Samples: []journal.Sample{}, Audit: []audit.Result{}, Recovery: []journal.Recovery{},
	}
	if def, err := json.Marshal(p.Exp); err == nil {
		j.Definition = def
	}
	fmt.Fprintf(env.Out, "Experiment: %s (run %s)\n", p.Exp.Title, r.runID)
	for _, l := range p.Describe() {
		fmt.Fprintf(env.Out, "  %s\n", l)
	}
	if env.Platform != "" {
		fmt.Fprintf(env.Out, "  Kafka platform: %s\n", env.Platform)
	}
	return j
}

// sampling is the run's measurement: every part of the chosen variants, the
// supervisor, the log from outside, and the load generator's own
// per-request feed (meter).
type sampling struct {
	smp       *sampler.Sampler
	deriver   *sampler.Deriver
	meter     *sampler.ClientMeter
	logs      []sampler.Log
	lagSource string
	closeLogs func()
	cancel    context.CancelFunc // stops sampling
	done      chan struct{}      // closed when sampling has stopped
}

// newSampling sets up the run's sampling (and its store, r.store) without
// starting it.
func (r *run) newSampling(apis map[string]string) (*sampling, error) {
	p, env := r.p, r.env
	var targets []sampler.Target
	if env.ControlMetrics != "" {
		targets = append(targets, sampler.Target{Part: "supervisor", Variant: "lab", URL: env.ControlMetrics})
	}
	for _, part := range slices.Sorted(maps.Keys(env.Targets.Services)) {
		if v := env.Targets.Variants[part]; slices.Contains(p.Variants, v) {
			targets = append(targets, sampler.Target{Part: part, Variant: v, URL: "http://" + env.Targets.Services[part] + "/metrics"})
		}
	}
	var views []sampler.View
	for _, v := range p.Variants {
		views = append(views, sampler.View{Variant: v, BaseURL: apis[v]})
	}
	r.store = newStore(p.Variants, targets)
	s := &sampling{deriver: sampler.NewDeriver(p.Variants, targets), meter: sampler.NewClientMeter(p.Variants)}
	var err error
	s.logs, s.lagSource, s.closeLogs, err = logsOf(p, env)
	if err != nil {
		return nil, err
	}
	s.smp = &sampler.Sampler{Targets: targets, Views: views, Logs: s.logs, Acked: s.meter.Acked, Client: &http.Client{}}
	return s, nil
}

// start samples into st until stop, and returns after the first scrape
// (which gives every counter its starting point), ctx's end, or 5 s.
func (s *sampling) start(ctx context.Context, st *store) {
	sctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.done = make(chan struct{})
	first := make(chan struct{})
	var firstOnce sync.Once
	go func() {
		defer close(s.done)
		_ = s.smp.Run(sctx, func(sc sampler.Scrape) {
			// Cut after the scrape: a rating visible in the view read was
			// committed before the cut. The sample is the second ending at
			// the cut, so every answer belongs to the sample at or after it.
			sc.At = time.Now()
			ticks := s.meter.Cut(sc.At)
			st.add(sc, s.deriver.Next(sc, ticks), ticks)
			firstOnce.Do(func() { close(first) })
		})
	}()
	select { // a first scrape gives every counter its starting point
	case <-first:
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
	}
}

// stop ends sampling and waits for its last scrape.
func (s *sampling) stop() {
	s.cancel()
	<-s.done
}

// healOnCancel heals every open fault as soon as ctx is cancelled (Ctrl-C),
// until the returned stop is called.
func (r *run) healOnCancel(ctx context.Context) (stop func()) {
	runDone := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			r.healOpen()
		case <-runDone:
		}
	}()
	return func() { close(runDone) }
}

type loadResult struct {
	sum *load.Summary
	err error
}

// loadAndSchedule runs the load, the fault schedule and the method's
// actions, which start together (r.t0 is the schedule's zero), and returns
// when all have ended. The progress line keeps going until stopProgress.
func (r *run) loadAndSchedule(ctx context.Context, j *journal.Journal, ledgerPath string, meter *sampler.ClientMeter) (lr loadResult, loadEnd time.Time, stopProgress func()) {
	p := r.p
	var loadTargets []load.Target
	for _, v := range p.Variants {
		loadTargets = append(loadTargets, load.Target{Variant: v, BaseURL: r.env.APIs[v]})
	}
	lctx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	loadDone := make(chan loadResult, 1)
	r.t0 = time.Now()
	j.Started = r.t0
	go func() {
		sum, err := load.Run(lctx, load.Config{RunID: r.runID, Scenario: p.Scenario, Targets: loadTargets,
			LedgerPath: ledgerPath, Metrics: r.metrics, Observer: meter, Grace: 2 * time.Second, Retry: p.Exp.Load.RetryPolicy(),
			CatalogEdit: r.catalog.loadEdit()})
		loadDone <- loadResult{sum, err}
	}()
	schedDone := make(chan struct{})
	go func() { defer close(schedDone); r.schedule(ctx) }()
	actionsDone := make(chan struct{})
	go func() { defer close(actionsDone); r.applyCatalogEdit(ctx) }()
	progressDone := make(chan struct{})
	pctx, cancelProgress := context.WithCancel(ctx)
	go func() { defer close(progressDone); r.progress(pctx) }()

	lr = <-loadDone
	loadEnd = time.Now()
	<-schedDone
	<-actionsDone
	return lr, loadEnd, func() {
		cancelProgress()
		<-progressDone
	}
}

// auditLedger reads the lab's final state and checks every rating of the
// ledger against it; it returns the ledger's entries.
func (r *run) auditLedger(j *journal.Journal, client *http.Client, apis map[string]string, ledgerPath string) []ledger.Entry {
	p, env := r.p, r.env
	actx, acancel := context.WithTimeout(context.Background(), 60*time.Second)
	j.Final = audit.Observe(actx, client, env.Dir, p.Variants, apis)
	applied := audit.ReadApplied(actx, env.Dir, p.Variants)
	acancel()
	led, err := load.ReadLedger(ledgerPath)
	if err != nil {
		r.note(fmt.Sprintf("ledger unreadable, no audit: %v", err))
		return nil
	}
	j.Audit = audit.All(audit.Inputs{Variants: p.Variants, Entries: led.Entries, Baseline: j.Baseline, Final: j.Final, Applied: applied})
	return led.Entries
}

// conclude completes the journal: faults, the catalog edit's figures (from
// the ledger's entries), samples, recovery, the hypothesis's verdict per
// variant and the client's figures.
func (r *run) conclude(j *journal.Journal, rt runTimes, entries []ledger.Entry, reg prometheus.Gatherer) {
	p := r.p
	j.Ended = time.Now()
	j.Faults = r.faultEvents()
	j.CatalogEdits = r.catalogEdits(entries, j.Faults)
	j.Samples = r.store.samples()
	if rec := journal.ComputeRecovery(*j); rec != nil {
		j.Recovery = rec
	}
	j.Phases, j.Verdict = p.evaluate(r.store, rt, j.Audit)
	j.Client = p.clientWindows(r.store, rt)
	addDashboardP99(j.Client, reg)
	if rt.interrupted {
		j.Error = fmt.Sprintf("interrupted at +%s: every fault it injected was healed; the hypothesis was not checked to the end", offset(rt.loadEnd, r.t0))
		for v := range j.Verdict {
			j.Verdict[v] = false
		}
	}
	if len(r.notes) > 0 {
		j.Error = joinNonEmpty("; ", j.Error, strings.Join(r.notes, "; "))
	}
}

// addDashboardP99 puts beside each variant's exact run p99 the one a
// dashboard interpolates from the load generator's histogram, so a report
// shows how far the bucket figure is off.
func addDashboardP99(windows []journal.ClientWindow, reg prometheus.Gatherer) {
	fams, err := reg.Gather()
	if err != nil {
		return
	}
	for i, w := range windows {
		if w.Window != journal.WindowRun {
			continue
		}
		for _, f := range fams {
			if f.GetName() != metricname.LoadRequestDurationSeconds {
				continue
			}
			b := histogram(f, func(m *dto.Metric) bool { return sampler.Label(m, "variant") == w.Variant })
			if q, ok := b.quantile(0.99); ok {
				windows[i].All.DashboardP99 = duration.Ptr(time.Duration(q * float64(time.Second)))
			}
		}
	}
}

// slo is the success-rate objective of the hypothesis, for the journal.
func (p *Plan) slo() float64 {
	for _, pp := range p.Probes {
		if pp.kind.name == "success_rate" && pp.tol.set {
			return pp.tol.v
		}
	}
	return 0
}

func (r *run) note(s string) {
	r.mu.Lock()
	r.notes = append(r.notes, s)
	r.mu.Unlock()
}

func (r *run) eventf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	prefix := ""
	if r.env.TTY {
		prefix = "\r\033[K"
	}
	fmt.Fprintf(r.env.Out, prefix+"  +%-6s "+format+"\n", append([]any{offset(time.Now(), r.t0)}, args...)...)
}

// schedule injects and heals every step at its time, each variant's faults
// at the same moment, until done or ctx ends.
func (r *run) schedule(ctx context.Context) {
	var wg sync.WaitGroup
	for _, st := range r.p.Steps {
		injected := make(chan map[string][]faults.Fault, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !sleepUntil(ctx, r.t0.Add(st.At)) {
				injected <- nil
				return
			}
			injected <- r.inject(st)
		}()
		if st.Instant {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := <-injected
			if got == nil || !sleepUntil(ctx, r.t0.Add(st.End())) {
				return
			}
			r.heal(ctx, st, got)
		}()
	}
	wg.Wait()
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	tm := time.NewTimer(time.Until(t))
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// inject applies one step to every variant at once.
func (r *run) inject(st PlannedStep) map[string][]faults.Fault {
	type got struct {
		variant string
		f       faults.Fault
		err     error
		req     faults.Request
	}
	var wg sync.WaitGroup
	ch := make(chan got, 16)
	for _, v := range r.p.Variants {
		for _, req := range st.Variants[v].Requests {
			req.Owner = "chaos " + r.runID + " " + st.ID
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Not ctx: an injection under way when Ctrl-C comes must
				// still get its answer, so that its fault is known and healed.
				ictx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				defer cancel()
				f, err := r.env.Faults.Inject(ictx, req)
				ch <- got{v, f, err, req}
			}()
		}
	}
	go func() { wg.Wait(); close(ch) }()
	out := map[string][]faults.Fault{}
	errs := map[string][]string{}
	for g := range ch {
		if g.err != nil {
			errs[g.variant] = append(errs[g.variant], fmt.Sprintf("%s on %s: %v", g.req.Fault, g.req.Target, g.err))
			continue
		}
		out[g.variant] = append(out[g.variant], g.f)
		r.mu.Lock()
		if g.f.State == faults.StateActive {
			r.injected[g.f.ID] = false
		}
		r.mu.Unlock()
	}
	var lines []string
	for _, v := range r.p.Variants {
		vf := st.Variants[v]
		ev := &journal.FaultEvent{ID: st.ID, Fault: st.Fault, Variant: v, PlannedAt: duration.Duration(st.At), PlannedFor: duration.Duration(st.For), Params: map[string]string{}}
		for _, req := range vf.Requests {
			ev.Targets = append(ev.Targets, req.Target)
			for k, val := range req.Params {
				ev.Params[k] = val
			}
		}
		if len(ev.Params) == 0 {
			ev.Params = nil
		}
		var ids, outcomes []string
		for _, f := range out[v] {
			if ev.InjectedAt.IsZero() || f.InjectedAt.Before(ev.InjectedAt) {
				ev.InjectedAt = f.InjectedAt
			}
			ids = append(ids, f.ID)
			if f.Outcome != "" {
				outcomes = append(outcomes, f.Target+": "+f.Outcome)
			}
		}
		ev.Outcome = strings.Join(outcomes, "; ")
		sort.Strings(ids)
		switch {
		case vf.NotApplicable != "":
			ev.Error = journal.NoEquivalent + vf.NotApplicable
			lines = append(lines, v+": —")
		case len(errs[v]) > 0:
			ev.Error = strings.Join(errs[v], "; ")
			lines = append(lines, fmt.Sprintf("%s: FAILED %s", v, ev.Error))
		default:
			line := fmt.Sprintf("%s: %s [%s]", v, describeRequests(vf.Requests), strings.Join(ids, " "))
			if ev.Outcome != "" {
				line += " → " + ev.Outcome
			}
			lines = append(lines, line)
		}
		if st.Instant && !ev.InjectedAt.IsZero() {
			ev.HealedAt = ev.InjectedAt
		}
		r.mu.Lock()
		r.events[st.ID+"/"+v] = ev
		if !st.Instant {
			r.active[st.ID] = st.Fault
		}
		r.mu.Unlock()
	}
	verb := "inject"
	if st.Instant {
		verb = "apply"
	}
	r.eventf("%s %s %s: %s", verb, st.ID, st.Fault, strings.Join(lines, " | "))
	return out
}

func describeRequests(reqs []faults.Request) string {
	var out []string
	for _, q := range reqs {
		out = append(out, q.Fault+" "+q.Target)
	}
	return strings.Join(out, ", ")
}

// heal waits for the supervisor to heal the step's faults (their --for ran
// out) and records when; a fault still active shortly after is healed here.
func (r *run) heal(ctx context.Context, st PlannedStep, got map[string][]faults.Fault) {
	var wg sync.WaitGroup
	late := map[string]time.Duration{} // per variant, beyond the fault's planned end
	for v, fs := range got {
		for _, f := range fs {
			if f.State != faults.StateActive {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				healed := r.awaitHeal(ctx, f)
				r.mu.Lock()
				defer r.mu.Unlock()
				if healed.State == faults.StateHealed {
					r.injected[f.ID] = true
				}
				ev := r.events[st.ID+"/"+v]
				if ev == nil {
					return
				}
				if healed.HealedAt.After(ev.HealedAt) {
					ev.HealedAt = healed.HealedAt
				}
				if !healed.HealsAt.IsZero() && healed.HealedAt.Sub(healed.HealsAt) > late[v] {
					late[v] = healed.HealedAt.Sub(healed.HealsAt)
				}
				if healed.HealError != "" {
					ev.Error = joinNonEmpty("; ", ev.Error, "heal "+f.ID+": "+healed.HealError)
				}
			}()
		}
	}
	wg.Wait()
	r.mu.Lock()
	delete(r.active, st.ID)
	var slow []string
	for _, v := range slices.Sorted(maps.Keys(late)) {
		if late[v] > time.Second {
			slow = append(slow, fmt.Sprintf("%s %.1f s after its planned end", v, late[v].Seconds()))
		}
	}
	r.mu.Unlock()
	if len(slow) > 0 {
		// Toxiproxy's toxic removal can take its 5 s write timeout
		// (docs/reliability.md); the journal keeps the real heal time.
		r.eventf("healed %s %s (%s; the journal records when)", st.ID, st.Fault, strings.Join(slow, ", "))
		return
	}
	r.eventf("healed %s %s", st.ID, st.Fault)
}

// awaitHeal polls one fault until the supervisor healed it, for at most a
// few seconds past its time, then heals it itself.
func (r *run) awaitHeal(ctx context.Context, f faults.Fault) faults.Fault {
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		cur, err := r.env.Faults.Get(ctx, f.ID)
		if err == nil && cur.State != faults.StateActive {
			return cur
		}
		time.Sleep(10 * time.Millisecond)
	}
	hctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cur, err := r.env.Faults.Heal(hctx, f.ID)
	if err != nil {
		return faults.Fault{ID: f.ID, State: faults.StateActive, HealError: err.Error()}
	}
	return cur
}

// cleanup heals every fault this run injected that is still active, then
// runs the rollbacks once. It is safe to call more than once.
func (r *run) cleanup() {
	r.healOpen()
	r.rollbacks()
}

// healOpen heals every fault this run injected that is still active.
func (r *run) healOpen() {
	r.mu.Lock()
	var open []string
	for id, healed := range r.injected {
		if !healed {
			open = append(open, id)
		}
	}
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, id := range open {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := r.env.Faults.Heal(ctx, id)
			r.mu.Lock()
			defer r.mu.Unlock()
			if err != nil {
				r.notes = append(r.notes, fmt.Sprintf("could not heal %s: %v", id, err))
				return
			}
			r.injected[id] = true
			for _, ev := range r.events {
				if ev.HealedAt.IsZero() && !ev.InjectedAt.IsZero() && f.Fault != "" && slices.Contains(ev.Targets, f.Target) {
					ev.HealedAt = f.HealedAt
				}
			}
		}()
	}
	wg.Wait()
	if len(open) > 0 {
		r.eventf("healed %d fault(s) this run had injected", len(open))
	}
}

// rollbacks runs the experiment's rollbacks once.
func (r *run) rollbacks() {
	r.mu.Lock()
	if r.rolled {
		r.mu.Unlock()
		return
	}
	r.rolled = true
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, rb := range r.p.Exp.Rollbacks {
		var err error
		switch rb.Action {
		case "heal-all":
			_, err = r.env.Faults.HealAll(ctx)
		default:
			action := supervisor.Action(rb.Action)
			_, err = r.env.Control.Action(ctx, rb.Part, action)
			if err != nil && (strings.Contains(err.Error(), "already running") || strings.Contains(err.Error(), "not running") && action == supervisor.ActionResume) {
				err = nil // already where the rollback wants it
			}
		}
		if err != nil {
			r.note(fmt.Sprintf("rollback %s %s: %v", rb.Action, rb.Part, err))
		}
	}
}

// drain waits, after the load, until every variant caught up (no consumer
// lag, the view shows every acknowledged rating) for two samples in a row,
// or the drain time ran out.
func (r *run) drain(ctx context.Context, loadEnd time.Time) {
	limit := loadEnd.Add(r.p.Exp.Drain.D())
	streak := 0
	r.eventf("load done; draining (up to %s)", r.p.Exp.Drain)
	for time.Now().Before(limit) {
		if !sleepUntil(ctx, time.Now().Add(time.Second)) {
			return
		}
		caughtUp := true
		for _, v := range r.p.Variants {
			smp, ok := r.store.latest(v)
			if !ok || !smp.At.After(loadEnd) {
				caughtUp = false
				continue
			}
			if gap, ok := smp.Get(journal.SeriesViewGap); !ok || gap > 0 {
				caughtUp = false
			}
			if lag, ok := smp.Get(journal.SeriesConsumerLag); ok && lag > 0 || smp.IsUnknown(journal.SeriesConsumerLag) {
				caughtUp = false
			}
		}
		if caughtUp {
			streak++
		} else {
			streak = 0
		}
		if streak >= 2 {
			r.eventf("every variant caught up")
			return
		}
	}
	r.eventf("drain time over; not every variant caught up")
}

// faultEvents returns the timeline in schedule order, variants in order.
func (r *run) faultEvents() []journal.FaultEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []journal.FaultEvent{}
	for _, st := range r.p.Steps {
		for _, v := range r.p.Variants {
			if ev, ok := r.events[st.ID+"/"+v]; ok {
				out = append(out, *ev)
			} else {
				out = append(out, journal.FaultEvent{ID: st.ID, Fault: st.Fault, Variant: v, PlannedAt: duration.Duration(st.At),
					PlannedFor: duration.Duration(st.For), Error: "not injected: the run ended first"})
			}
		}
	}
	return out
}

// progress prints one line a second (rewritten in place on a terminal,
// every 5 s otherwise): per variant throughput, success, p99 and lag, the
// probes currently out of tolerance, and the active faults.
func (r *run) progress(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			if r.env.TTY {
				fmt.Fprint(r.env.Out, "\r\033[K")
			}
			return
		case <-t.C:
		}
		n++
		if !r.env.TTY && n%5 != 0 {
			continue
		}
		now := time.Now()
		r.mu.Lock()
		var act []string
		for id, f := range r.active {
			act = append(act, id+" "+f)
		}
		r.mu.Unlock()
		sort.Strings(act)
		var cols []string
		for _, v := range r.p.Variants {
			smp, ok := r.store.latest(v)
			if !ok {
				continue
			}
			col := fmt.Sprintf("%s %s/s", v, num(smp, journal.SeriesClientRPS, "%.0f"))
			if s, ok := smp.Get(journal.SeriesClientSuccessRatio); ok {
				col += fmt.Sprintf(" ok %.1f%%", s*100)
			}
			if q, ok := smp.Get(journal.SeriesClientP99); ok {
				col += " p99 " + fmtSeconds(q)
			}
			if n := r.metrics.Retries(v); n > 0 {
				col += fmt.Sprintf(" retries %.0f", n)
			}
			if l, ok := smp.Get(journal.SeriesConsumerLag); ok {
				col += fmt.Sprintf(" lag %.0f", l)
			} else if smp.IsUnknown(journal.SeriesConsumerLag) {
				col += " lag unknown"
			}
			if bad := r.p.liveViolations(r.store, v, now, r.t0, len(act) > 0); len(bad) > 0 {
				col += " ✗ " + strings.Join(bad, ",")
			}
			cols = append(cols, col)
		}
		line := fmt.Sprintf("  +%-6s %s", offset(now, r.t0), strings.Join(cols, " | "))
		if len(act) > 0 {
			line += " | faults: " + strings.Join(act, ", ")
		}
		if len(r.p.Variants) > 0 {
			if smp, ok := r.store.latest(r.p.Variants[0]); ok {
				if busy, ok := smp.Get(journal.SeriesMachineCPUBusy); ok {
					line += fmt.Sprintf(" | machine cpu %.0f%%", busy*100) // shared by every variant
				}
			}
		}
		r.mu.Lock()
		if r.env.TTY {
			fmt.Fprint(r.env.Out, "\r\033[K"+line)
		} else {
			fmt.Fprintln(r.env.Out, line)
		}
		r.mu.Unlock()
	}
}

func num(s journal.Sample, name, format string) string {
	if v, ok := s.Get(name); ok {
		return fmt.Sprintf(format, v)
	}
	return "-"
}

// ErrNotHeld is returned by callers when a hypothesis did not hold.
var ErrNotHeld = errors.New("the steady-state hypothesis did not hold")
