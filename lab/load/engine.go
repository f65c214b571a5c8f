package load

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/ratingslab/lab/lab/load/ledger"
)

// Target is one variant to load and the base URL of its public API.
type Target struct {
	Variant string // "rpc", "stream", ...
	BaseURL string // e.g. http://127.0.0.1:7710
}

// Config is one run of the engine.
type Config struct {
	// RunID names the run: the ledger file and every request id derive from it.
	RunID string
	// Scenario gives the schedule, request timeout and thresholds (with any
	// command-line overrides already applied).
	Scenario *Scenario
	// Source is the request sequence; nil means the scenario's generator.
	Source Source
	// SourceName goes into the ledger header: "scenario" or "file:<path>".
	SourceName string
	Targets    []Target
	// LedgerPath, if set, is where the ledger is created (it must not exist).
	LedgerPath string
	// Metrics, if set, receive every outcome.
	Metrics *Metrics
	// Observer, if set, sees every request sent and answered (the exact
	// per-request feed an experiment derives its figures from).
	Observer Observer
	// OnProgress, if set, is called every ProgressEvery (default 1 s) with
	// one snapshot per target, in target order.
	OnProgress    func(elapsed time.Duration, snaps []Snapshot)
	ProgressEvery time.Duration
	// Grace is how long requests in flight may still finish after the run
	// is interrupted; then they are aborted and recorded as ambiguous.
	// Default 5 s.
	Grace time.Duration
	// Abort, when closed, aborts in-flight requests at once (a second Ctrl-C).
	Abort <-chan struct{}
	// CatalogEdit, when set, has the load rate a movie an experiment adds
	// to the catalog during the run, with the answer each variant owes it.
	CatalogEdit *CatalogEdit
	// Retry, when Max > 0, sends ratings whose outcome was unknown again
	// with the same request id (see RetryPolicy); the ledger keeps every
	// attempt.
	Retry RetryPolicy
}

// ErrNoTargets is returned for a run without targets.
var ErrNoTargets = errors.New("no variant to load")

// variantRun is one variant's attacker, sequence position and tally.
type variantRun struct {
	target   Target
	base     string
	runID    string
	source   Source
	limit    uint64
	next     atomic.Uint64
	stats    *variantStats
	metrics  *variantMetrics
	observer Observer
	attacker *vegeta.Attacker
	client   *http.Client    // the attacker's: its idle connections are closed when the run ends
	retry    *retryTransport // nil without a retry policy
	edit     *CatalogEdit    // nil without a catalog edit
}

var jsonHeader = http.Header{"Content-Type": []string{"application/json"}}

// targeter hands out the sequence in order: request seq goes to every
// variant, each variant's attacker asking for it when the schedule's tick
// number seq comes. The sequence number rides along in the URL fragment,
// which the HTTP client never sends but vegeta copies into the result.
func (v *variantRun) targeter(tgt *vegeta.Target) error {
	seq := v.next.Add(1) - 1
	if seq >= v.limit {
		return vegeta.ErrNoTargets
	}
	req, ok := v.source.Request(seq)
	if !ok {
		return vegeta.ErrNoTargets
	}
	v.stats.sent.Add(1)
	if v.observer != nil {
		v.observer.Sent(v.target.Variant, seq)
	}
	tgt.Method = req.Method()
	tgt.URL = v.base + req.Path() + "#" + strconv.FormatUint(seq, 10)
	if req.Kind == KindRating {
		tgt.Body = appendRatingBody(make([]byte, 0, 128), req, RequestID(v.runID, v.target.Variant, seq))
		tgt.Header = jsonHeader
	}
	return nil
}

func seqOf(u string) (uint64, bool) {
	i := strings.LastIndexByte(u, '#')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(u[i+1:], 10, 64)
	return n, err == nil
}

// validateTargets rejects a run whose targets are unusable, before any request.
func validateTargets(ts []Target) error {
	if len(ts) == 0 {
		return ErrNoTargets
	}
	seen := map[string]bool{}
	for _, t := range ts {
		if t.Variant == "" || strings.ContainsAny(t.Variant, " -\t") {
			return fmt.Errorf("variant name %q: must be a non-empty word without spaces or dashes", t.Variant)
		}
		if seen[t.Variant] {
			return fmt.Errorf("variant %s: listed twice", t.Variant)
		}
		seen[t.Variant] = true
		u, err := url.Parse(t.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("variant %s: target %q is not a base URL like http://127.0.0.1:7710", t.Variant, t.BaseURL)
		}
	}
	return nil
}

// Run drives every target with the same request sequence on the same
// schedule, starting at the same instant, until the schedule ends or ctx is
// cancelled (then the run is "interrupted": no new requests, in-flight ones
// get Grace to finish). Every rating sent gets exactly one ledger entry
// before Run returns (and every read its get entry). The error is non-nil only if the run could not start
// or the ledger could not be written.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	source, err := cfg.prepare()
	if err != nil {
		return nil, err
	}
	pacer := newSchedulePacer(cfg.Scenario.Arrival)
	if sized, ok := source.(interface{ Len() uint64 }); ok && sized.Len() < pacer.total {
		pacer.total = sized.Len() // a replayed file ends the run when it runs out
	}
	if pacer.total == 0 {
		return nil, errors.New("the schedule holds no request")
	}
	if cfg.CatalogEdit != nil {
		source = editSource{inner: source, edit: cfg.CatalogEdit}
	}
	abortCtx, abort := context.WithCancel(context.Background())
	defer abort()
	e := &engine{cfg: cfg, pacer: pacer, abort: abort}
	e.runs = newVariantRuns(abortCtx, cfg, source, pacer.total)

	started := time.Now()
	if e.lw, err = createLedger(cfg, started, pacer.total); err != nil {
		return nil, err
	}
	start, allDone := e.startAttacks()
	interrupted, runErr := e.watch(ctx, start, allDone)
	// A finished run holds no connections: a run that pushed a server to
	// its limit would otherwise keep every connection it opened (up to
	// one per request in flight at its peak) open for the transport's
	// idle timeout, on both sides, into whatever runs next.
	defer func() {
		for _, v := range e.runs {
			v.client.CloseIdleConnections()
		}
	}()
	return e.finish(started, interrupted, runErr)
}

// engine is one Run between its start and its summary.
type engine struct {
	cfg   Config
	pacer *schedulePacer
	runs  []*variantRun
	lw    *ledger.Writer     // nil without a ledger
	abort context.CancelFunc // aborts the requests in flight
}

// prepare validates the run and fills in defaults; it returns the request
// sequence (the scenario's generator unless cfg.Source is set).
func (cfg *Config) prepare() (Source, error) {
	if cfg.Scenario == nil {
		return nil, errors.New("no scenario")
	}
	if cfg.RunID == "" || strings.ContainsAny(cfg.RunID, "/\\ \t\n") {
		return nil, fmt.Errorf("run id %q: must be a non-empty word usable as a file name", cfg.RunID)
	}
	if err := validateTargets(cfg.Targets); err != nil {
		return nil, err
	}
	if err := cfg.Scenario.Arrival.validate(false); err != nil {
		return nil, err
	}
	if err := cfg.Retry.Validate(); err != nil {
		return nil, fmt.Errorf("retries: %w", err)
	}
	source := cfg.Source
	if source == nil {
		g, err := NewGenerator(cfg.Scenario)
		if err != nil {
			return nil, err
		}
		source = g
	}
	if cfg.SourceName == "" {
		cfg.SourceName = "scenario"
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = time.Second
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 5 * time.Second
	}
	return source, nil
}

// newVariantRuns gives each target its own client and attacker; abortCtx
// aborts their requests in flight.
func newVariantRuns(abortCtx context.Context, cfg Config, source Source, limit uint64) []*variantRun {
	timeout := cfg.Scenario.RequestTimeout.D()
	runs := make([]*variantRun, len(cfg.Targets))
	for i, t := range cfg.Targets {
		transport := newTransport(abortCtx, timeout)
		var retry *retryTransport
		if cfg.Retry.Max > 0 {
			retry = &retryTransport{next: transport, abort: abortCtx, policy: cfg.Retry, attempts: map[uint64][]ledger.Attempt{}}
			transport = retry
		}
		client := &http.Client{
			// The transport applies the request timeout (see outcomeTransport),
			// per attempt when ratings are retried.
			Transport: transport,
			// The API never redirects; a redirect is an answer to count, not follow.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		runs[i] = &variantRun{
			target:   t,
			base:     strings.TrimSuffix(t.BaseURL, "/"),
			runID:    cfg.RunID,
			source:   source,
			limit:    limit,
			stats:    newVariantStats(),
			metrics:  cfg.Metrics.forVariant(t.Variant),
			observer: cfg.Observer,
			edit:     cfg.CatalogEdit,
			retry:    retry,
			// Workers stay uncapped (vegeta's default MaxWorkers): a stalled
			// server must cost goroutines, never delay the schedule.
			attacker: vegeta.NewAttacker(vegeta.Client(client)),
			client:   client,
		}
	}
	return runs
}

// createLedger creates the run's ledger, or returns nil when the run keeps
// none (cfg.LedgerPath empty).
func createLedger(cfg Config, started time.Time, total uint64) (*ledger.Writer, error) {
	if cfg.LedgerPath == "" {
		return nil, nil
	}
	h := ledger.Header{
		RunID:              cfg.RunID,
		Scenario:           cfg.Scenario.Name,
		Seed:               cfg.Scenario.Seed,
		Targets:            map[string]string{},
		Source:             cfg.SourceName,
		StartedAt:          started,
		Schedule:           DescribeArrival(cfg.Scenario.Arrival),
		ExpectedPerVariant: total,
	}
	for _, t := range cfg.Targets {
		h.Variants = append(h.Variants, t.Variant)
		h.Targets[t.Variant] = t.BaseURL
	}
	return ledger.Create(cfg.LedgerPath, h)
}

// startAttacks starts every variant's attacker at the same instant, which
// it returns; allDone is closed when every attacker has finished.
func (e *engine) startAttacks() (start time.Time, allDone <-chan struct{}) {
	// All attackers wait at the gate so they start within microseconds of
	// each other: the same request reaches every variant at the same moment.
	gate := make(chan struct{})
	var consumers sync.WaitGroup
	// start is written before close(gate), read after it.
	for _, v := range e.runs {
		consumers.Add(1)
		go func() {
			defer consumers.Done()
			<-gate
			// The duration is a backstop only; the pacer stops the attack
			// after exactly pacer.total requests.
			backstop := e.cfg.Scenario.Arrival.TotalDuration() + 5*time.Second
			p := anchoredPacer{inner: e.pacer, lag: time.Since(start)}
			for res := range v.attacker.Attack(v.targeter, p, backstop, v.target.Variant) {
				v.handle(res, e.lw)
			}
		}()
	}
	start = time.Now()
	if e.cfg.CatalogEdit != nil {
		e.cfg.CatalogEdit.begin(start)
	}
	close(gate)
	done := make(chan struct{})
	go func() { consumers.Wait(); close(done) }()
	return start, done
}

// watch waits for the attackers to finish, reporting progress and flushing
// the ledger every ProgressEvery. Cancelling ctx interrupts the run (no new
// requests, in-flight ones get Grace); cfg.Abort, Grace's end or a ledger
// that cannot be written abort the requests in flight.
func (e *engine) watch(ctx context.Context, start time.Time, allDone <-chan struct{}) (interrupted bool, runErr error) {
	var graceTimer <-chan time.Time
	stopAll := func() {
		for _, v := range e.runs {
			v.attacker.Stop()
		}
	}
	ticker := time.NewTicker(e.cfg.ProgressEvery)
	defer ticker.Stop()
	ctxDone, abortReq := ctx.Done(), e.cfg.Abort
	for {
		select {
		case <-allDone:
			return interrupted, runErr
		case <-ctxDone:
			ctxDone = nil
			interrupted = true
			stopAll()
			graceTimer = time.After(e.cfg.Grace)
		case <-abortReq:
			abortReq = nil
			interrupted = true
			stopAll()
			e.abort()
		case <-graceTimer:
			graceTimer = nil
			e.abort()
		case <-ticker.C:
			elapsed := time.Since(start)
			snaps := make([]Snapshot, len(e.runs))
			for i, v := range e.runs {
				snaps[i] = v.stats.snapshot(v.target.Variant, true)
				if v.metrics != nil {
					v.metrics.inFlight.Set(float64(snaps[i].InFlight))
					v.metrics.rate.Set(e.pacer.Rate(elapsed))
				}
			}
			if e.cfg.OnProgress != nil {
				e.cfg.OnProgress(elapsed, snaps)
			}
			if e.lw != nil && runErr == nil {
				if err := e.lw.Flush(); err != nil {
					// The audit needs every outcome; a run whose ledger
					// cannot be written must stop, not carry on blind.
					runErr = err
					interrupted = true
					stopAll()
					e.abort()
				}
			}
		}
	}
}

// finish zeroes the live gauges, summarizes the run and closes its ledger.
func (e *engine) finish(started time.Time, interrupted bool, runErr error) (*Summary, error) {
	ended := time.Now()
	for _, v := range e.runs {
		if v.metrics != nil {
			v.metrics.inFlight.Set(0)
			v.metrics.rate.Set(0)
		}
	}
	sum := buildSummary(e.cfg, e.runs, e.pacer.total, started, ended, interrupted)
	if e.lw != nil {
		sum.Ledger = e.lw.Path()
		if err := e.lw.Close(ended, interrupted); err != nil && runErr == nil {
			runErr = err
		}
	}
	return sum, runErr
}

// handle turns one vegeta result into an outcome: tally, metrics,
// observer, ledger.
func (v *variantRun) handle(res *vegeta.Result, lw *ledger.Writer) {
	if res.Method == "" {
		return // a tick that found the sequence exhausted: nothing was sent
	}
	seq, ok := seqOf(res.URL)
	if !ok {
		return
	}
	req, _ := v.source.Request(seq)
	outcome, cause := classify(res)
	tried := v.retry.take(seq)
	if tried != nil {
		o, c := retriedOutcome(outcome, string(cause), tried)
		outcome, cause = o, Cause(c)
	}
	expected := expectedOf(req)
	if req.NewMovie {
		expected = v.edit.expect(v.target.Variant, outcome, int(res.Code), res.Timestamp, res.Latency)
	}
	a := Answer{Variant: v.target.Variant, Seq: seq, Kind: req.Kind, MovieID: req.MovieID, Tenths: req.Tenths,
		Outcome: outcome, Cause: cause, Expected: expected, SentAt: res.Timestamp, Latency: res.Latency, Retries: max(len(tried)-1, 0)}
	v.stats.record(a)
	v.metrics.observe(a)
	if v.observer != nil {
		v.observer.Answered(a)
	}
	if lw == nil {
		return
	}
	e := ledger.Entry{
		Variant:      v.target.Variant,
		Seq:          seq,
		Kind:         req.Kind.String(),
		MovieID:      req.MovieID,
		UnknownMovie: req.Unknown,
		NewMovie:     req.NewMovie,
		Expected:     a.Expected,
		SentAt:       res.Timestamp,
		Outcome:      outcome,
		Status:       int(res.Code),
		Cause:        string(cause),
		LatencyNs:    res.Latency,
		Attempts:     tried,
	}
	if req.Kind == KindRating {
		e.RequestID = RequestID(v.runID, v.target.Variant, seq)
		e.UserID, e.Rating, e.RatingTenths = req.UserID, float64(req.Tenths)/10, req.Tenths
	}
	if outcome != Acknowledged {
		e.Error = res.Error
	}
	// A write error sticks in the writer; the run loop sees it at its next
	// flush and stops the run.
	_ = lw.Record(e)
}
