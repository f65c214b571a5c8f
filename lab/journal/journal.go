package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/ratingslab/lab/lab/audit"
	"github.com/ratingslab/lab/services/lib/duration"
)

// CurrentVersion is the journal format this code writes and reads. Bump it
// when a field changes meaning; Read rejects any other version by name.
//
// Version 2: client latency percentiles from the load generator's
// per-request latencies (not histogram buckets), per-phase client figures,
// unknown values as null, consumer lag measured from outside the consumer,
// success counting unexpected 4xx as failures, the view gap as two series,
// breakers by name, recovery metrics that say which signals a fault touched.
const CurrentVersion = 2

// Kinds of run.
const (
	KindExperiment = "experiment" // `lab chaos run`: load, faults, hypothesis, verdict
	KindLoad       = "load"       // `lab load` alone: samples and audit, no faults
)

// Journal is the record of one run. See the package documentation.
type Journal struct {
	Version int    `json:"version"`
	Kind    string `json:"kind"`
	Title   string `json:"title"`
	// Definition is the experiment file as parsed (JSON), so a reader can
	// see exactly what was run; null for a plain load run.
	Definition json.RawMessage `json:"definition,omitempty"`
	Seed       uint64          `json:"seed"`
	Variants   []string        `json:"variants"`
	// Settings are lab-wide switches of the run shown in the report header
	// and compared by `lab report --compare`, e.g. "breakers": "on",
	// "delivery": "effectively-once", "scenario": "steady".
	Settings map[string]string `json:"settings,omitempty"`
	// Platform is the Kafka platform the log variant ran on: "embedded
	// (kfake, 1 node)", "cluster (Apache Kafka, 3 nodes)", "external (...)";
	// empty in journals from before it was recorded.
	Platform string `json:"platform,omitempty"`
	// SLO is the client success-ratio objective the error budget derives
	// from (0.99 when zero).
	SLO float64 `json:"slo,omitempty"`
	// Objective is the whole SLO the hypothesis was held to, in words
	// (chaos.LabSLO): "success ≥ 99 %, exact p99 ≤ 1s, ..."; empty in
	// journals from before it was recorded.
	Objective string    `json:"objective,omitempty"`
	Started   time.Time `json:"started"`
	Ended     time.Time `json:"ended"`

	Faults  []FaultEvent  `json:"faults"`
	Samples []Sample      `json:"samples"`
	Phases  []PhaseResult `json:"phases"`

	// Baseline are the states read at the start of the run, before any load;
	// the audit expects baseline + ledger.
	Baseline []audit.Snapshot `json:"baseline,omitempty"`
	// Final are the states read after the drain, which the audit checked.
	Final    []audit.Snapshot `json:"final,omitempty"`
	Audit    []audit.Result   `json:"audit"`
	Recovery []Recovery       `json:"recovery"`
	// CatalogEdits are the experiment's movie-add actions and how each
	// variant converged on the new movie; absent without one.
	CatalogEdits []CatalogEdit `json:"catalog_edits,omitempty"`
	// Verdict per variant: true when every hypothesis probe held and the
	// audit found nothing.
	Verdict map[string]bool `json:"verdict"`
	// Client are the load generator's figures per variant and window
	// (the whole run and each phase), from its per-request latencies and
	// outcomes: exact counts, percentiles within latency.ErrorBound.
	Client []ClientWindow `json:"client"`
	// LagSource says how consumer_lag was measured (empty: not measured).
	LagSource string `json:"lag_source,omitempty"`
	// Ledger is the path of the load generator's ledger of this run.
	Ledger string `json:"ledger,omitempty"`
	// Error says why the run ended early; empty when it ran to the end.
	Error string `json:"error,omitempty"`
}

// FaultEvent is one fault of the schedule as it was applied.
type FaultEvent struct {
	ID      string            `json:"id"`
	Fault   string            `json:"fault"`   // kind: latency, blackhole, kill, pause, error-rate, ...
	Variant string            `json:"variant"` // variant the targets belong to
	Targets []string          `json:"targets"` // edges or parts
	Params  map[string]string `json:"params,omitempty"`
	// PlannedAt is the offset from Started at which the schedule wanted the
	// fault, PlannedFor how long it was to last.
	PlannedAt  duration.Duration `json:"planned_at"`
	PlannedFor duration.Duration `json:"planned_for"`
	// InjectedAt and HealedAt are when it really was applied and rolled
	// back; zero when that did not happen (see Error).
	InjectedAt time.Time `json:"injected_at"`
	HealedAt   time.Time `json:"healed_at"`
	Error      string    `json:"error,omitempty"`
	// Outcome is what the targets answered when the fault was applied (a
	// schema registry's decision on a contract change), for the timeline.
	Outcome string `json:"outcome,omitempty"`
}

// Window is the time the fault was active: from injection to heal, or to
// end when it was never healed.
func (f FaultEvent) Window(end time.Time) (from, to time.Time, ok bool) {
	if f.InjectedAt.IsZero() {
		return time.Time{}, time.Time{}, false
	}
	to = f.HealedAt
	if to.IsZero() || to.After(end) && !end.IsZero() {
		to = end
	}
	return f.InjectedAt, to, true
}

// Sample is one variant's named series over the second ending at At.
// In JSON, "values" maps each series to its number, or to null when the
// series applies but could not be measured that second (Unknown).
type Sample struct {
	At      time.Time
	Variant string
	Values  map[string]float64
	// Unknown are the series that could not be measured this second (the
	// broker or the consumer's store unreadable, ...): drawn as a gap,
	// never as a stale number.
	Unknown map[string]bool
}

// Set records a value, dropping NaN and infinities (a series without data
// is absent, never NaN).
func (s *Sample) Set(name string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	if s.Values == nil {
		s.Values = map[string]float64{}
	}
	s.Values[name] = v
	delete(s.Unknown, name)
}

// SetUnknown records that a series could not be measured this second.
func (s *Sample) SetUnknown(name string) {
	if s.Unknown == nil {
		s.Unknown = map[string]bool{}
	}
	s.Unknown[name] = true
	delete(s.Values, name)
}

// Get returns a value and whether it is present (false when unknown).
func (s Sample) Get(name string) (float64, bool) {
	v, ok := s.Values[name]
	return v, ok
}

// IsUnknown reports whether a series was unknown this second.
func (s Sample) IsUnknown(name string) bool { return s.Unknown[name] }

type sampleJSON struct {
	At      time.Time           `json:"at"`
	Variant string              `json:"variant"`
	Values  map[string]*float64 `json:"values"`
}

// MarshalJSON writes unknown series as null.
func (s Sample) MarshalJSON() ([]byte, error) {
	out := sampleJSON{At: s.At, Variant: s.Variant, Values: make(map[string]*float64, len(s.Values)+len(s.Unknown))}
	for k, v := range s.Values {
		out.Values[k] = &v
	}
	for k := range s.Unknown {
		out.Values[k] = nil
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads null values as unknown.
func (s *Sample) UnmarshalJSON(b []byte) error {
	var in sampleJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*s = Sample{At: in.At, Variant: in.Variant, Values: map[string]float64{}}
	for k, v := range in.Values {
		if v == nil {
			s.SetUnknown(k)
		} else {
			s.Values[k] = *v
		}
	}
	return nil
}

// Windows of ClientWindow.
const (
	WindowRun = "run" // every answer of the run
	// The phases: the steady-state windows of the hypothesis.
	WindowBefore = PhaseBefore
	WindowDuring = PhaseDuring
	WindowAfter  = PhaseAfter
)

// ClientWindow is what the load generator measured for one variant over
// one window, counted by the second in which each answer arrived.
type ClientWindow struct {
	Variant string    `json:"variant"`
	Window  string    `json:"window"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	// All requests, reads (GET) and writes (POST /api/ratings).
	All    ClientFigures `json:"all"`
	Reads  ClientFigures `json:"reads"`
	Writes ClientFigures `json:"writes"`
}

// ClientFigures are exact counts and latency percentiles of some answers.
type ClientFigures struct {
	Answered   uint64 `json:"answered"`
	AsExpected uint64 `json:"as_expected"`
	// SuccessRatio is AsExpected / Answered; null without answers.
	SuccessRatio *float64 `json:"success_ratio"`
	// Outcomes counts acknowledged, rejected, failed, ambiguous.
	Outcomes map[string]uint64 `json:"outcomes"`
	// Unexpected4xx counts 4xx answers to valid requests (failures).
	Unexpected4xx uint64 `json:"unexpected_4xx"`
	// Latency: nearest-rank percentiles of these answers' latencies.
	Latency LatencyFigures `json:"latency"`
	// DashboardP99, on the run window of all requests: the p99 a
	// dashboard interpolates from lab_load_request_duration_seconds
	// (histogram_quantile over its buckets), beside the exact one to show
	// how far the server-style figure is off.
	DashboardP99 *duration.Duration `json:"dashboard_p99,omitempty"`
}

// LatencyFigures are percentiles of a set of latencies (absent when empty).
type LatencyFigures struct {
	P50  *duration.Duration `json:"p50,omitempty"`
	P90  *duration.Duration `json:"p90,omitempty"`
	P99  *duration.Duration `json:"p99,omitempty"`
	P999 *duration.Duration `json:"p999,omitempty"`
	Max  *duration.Duration `json:"max,omitempty"`
}

// FindClient returns a variant's figures over a window.
func (j *Journal) FindClient(variant, window string) (ClientWindow, bool) {
	for _, c := range j.Client {
		if c.Variant == variant && c.Window == window {
			return c, true
		}
	}
	return ClientWindow{}, false
}

// Phase names.
const (
	PhaseBefore = "before"
	PhaseDuring = "during"
	PhaseAfter  = "after"
)

// PhaseResult is the steady-state hypothesis checked in one phase for one
// variant.
type PhaseResult struct {
	Name    string        `json:"name"` // before | during | after
	Variant string        `json:"variant"`
	At      time.Time     `json:"at"`
	Probes  []ProbeResult `json:"probes"`
	OK      bool          `json:"ok"`
}

// ProbeResult is one probe of a hypothesis: what was required and what was
// seen, both as text for people ("client_success_ratio >= 0.99", "0.973").
type ProbeResult struct {
	Name      string `json:"name"`
	Tolerance string `json:"tolerance"`
	Observed  string `json:"observed"`
	OK        bool   `json:"ok"`
	Error     string `json:"error,omitempty"`
}

// Recovery is how one variant lived through one fault. Durations are nil
// when the event did not happen within the run (never detected, never
// recovered); docs/report.md defines each one exactly.
type Recovery struct {
	FaultID string `json:"fault_id"`
	Variant string `json:"variant"`
	// TimeToDetect: injection → the first second of the first stretch in
	// which the client success ratio left its baseline band; null when it
	// never did (success untouched).
	TimeToDetect *duration.Duration `json:"time_to_detect"`
	// Touched lists the signals the fault moved out of their baseline band
	// (SignalSuccess, SignalP99, SignalLag, SignalView), from injection to
	// the next fault or the end; a signal not listed was untouched and has
	// no recovery time.
	Touched []string `json:"touched"`
	// Heal → success ratio back within 1 % of baseline, client latency back
	// (P99Recovered: p99 and p50 both in their bands), consumer lag back,
	// view converged, each after the fault's last stretch out of its band.
	SuccessRecovered *duration.Duration `json:"success_recovered"`
	P99Recovered     *duration.Duration `json:"p99_recovered"`
	LagRecovered     *duration.Duration `json:"lag_recovered"`
	ViewConverged    *duration.Duration `json:"view_converged"`
	// FailedDuringFault counts client errors (failed + ambiguous) from
	// injection to heal.
	FailedDuringFault int64 `json:"failed_during_fault"`
	// ErrorBudgetBurned is the share (0..1+) of the run's error budget the
	// errors from injection until success recovered consumed.
	ErrorBudgetBurned float64 `json:"error_budget_burned"`
	// Baselines the thresholds derive from (absent series: 0).
	BaselineSuccessRatio float64 `json:"baseline_success_ratio"`
	BaselineP99Seconds   float64 `json:"baseline_p99_seconds"`
	BaselineP50Seconds   float64 `json:"baseline_p50_seconds"`
	BaselineLag          float64 `json:"baseline_lag"`
	BaselineViewGap      float64 `json:"baseline_view_gap"`
	// Note explains a metric that could not be computed.
	Note string `json:"note,omitempty"`
}

// Validate checks what Write would otherwise write wrongly.
func (j *Journal) Validate() error {
	if j.Version != CurrentVersion {
		return fmt.Errorf("version: %d, this lab writes version %d", j.Version, CurrentVersion)
	}
	if j.Kind != KindExperiment && j.Kind != KindLoad {
		return fmt.Errorf("kind: %q, want %q or %q", j.Kind, KindExperiment, KindLoad)
	}
	if len(j.Variants) == 0 {
		return errors.New("variants: empty")
	}
	known := map[string]bool{}
	for _, v := range j.Variants {
		known[v] = true
	}
	for i, s := range j.Samples {
		if !known[s.Variant] {
			return fmt.Errorf("samples[%d].variant: %q is not one of the variants %v", i, s.Variant, j.Variants)
		}
		for name, v := range s.Values {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("samples[%d].values[%q]: %v is not a number (leave a series without data out, or mark it unknown)", i, name, v)
			}
		}
	}
	if len(j.Definition) > 0 && !json.Valid(j.Definition) {
		return errors.New("definition: not valid JSON")
	}
	return nil
}

// SortSamples orders samples by time, then variant (the order Write keeps).
func (j *Journal) SortSamples() {
	sort.SliceStable(j.Samples, func(a, b int) bool {
		if !j.Samples[a].At.Equal(j.Samples[b].At) {
			return j.Samples[a].At.Before(j.Samples[b].At)
		}
		return j.Samples[a].Variant < j.Samples[b].Variant
	})
}

// Write validates j and writes it to path atomically: nothing is written
// when j is invalid, and a reader never sees half a journal.
func Write(path string, j Journal) error {
	if j.Version == 0 {
		j.Version = CurrentVersion
	}
	if err := j.Validate(); err != nil {
		return fmt.Errorf("journal %s: %w", path, err)
	}
	b, err := json.MarshalIndent(j, "", " ")
	if err != nil {
		return fmt.Errorf("journal %s: %w", path, err)
	}
	b = append(b, '\n')
	tmp, err := os.CreateTemp(filepath.Dir(path), ".journal-*.tmp")
	if err != nil {
		return fmt.Errorf("journal %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("journal %s: %w", path, err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("journal %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("journal %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("journal %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("journal %s: %w", path, err)
	}
	return nil
}

// Read reads and checks a journal. Errors name the file and say what is
// wrong: missing, not JSON (with the byte offset), or a version this lab
// cannot read.
func Read(path string) (Journal, error) {
	var j Journal
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return j, fmt.Errorf("journal %s: no such file", path)
	}
	if err != nil {
		return j, fmt.Errorf("journal %s: %w", path, err)
	}
	return Decode(path, b)
}

// Decode parses a journal's bytes; name is used in errors.
func Decode(name string, b []byte) (Journal, error) {
	var j Journal
	if len(bytes.TrimSpace(b)) == 0 {
		return j, fmt.Errorf("journal %s: empty file", name)
	}
	// Look at the version first: a journal from another version may not
	// even decode into today's types, and saying so beats a type error.
	var head struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return j, fmt.Errorf("journal %s: corrupt JSON: %s", name, describeJSONError(b, err))
	}
	switch {
	case head.Version == nil:
		return j, fmt.Errorf("journal %s: no \"version\" field: not a lab journal", name)
	case *head.Version != CurrentVersion:
		return j, fmt.Errorf("journal %s: version %d is not supported (this lab reads version %d)%s; render it with the lab release that wrote it", name, *head.Version, CurrentVersion, versionHint(*head.Version))
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return j, fmt.Errorf("journal %s: corrupt JSON: %s", name, describeJSONError(b, err))
	}
	if err := j.Validate(); err != nil {
		return j, fmt.Errorf("journal %s: %w", name, err)
	}
	return j, nil
}

// versionHint says why another version is not read with today's meanings.
func versionHint(v int) string {
	switch {
	case v == 1:
		return ": version 1 interpolated latency percentiles from histogram buckets, took consumer lag from the consumer's own gauge and counted ratings of unknown outcome as failed, so its figures do not mean what version 2's do"
	case v > CurrentVersion:
		return ": it was written by a newer lab"
	}
	return ""
}

// describeJSONError adds the byte offset and line to a JSON error.
func describeJSONError(b []byte, err error) string {
	var off int64 = -1
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		off = syn.Offset
	case errors.As(err, &typ):
		off = typ.Offset
	}
	if off < 0 {
		return err.Error()
	}
	line := 1 + bytes.Count(b[:min(int(off), len(b))], []byte("\n"))
	return fmt.Sprintf("%v at byte offset %d (line %d)", err, off, line)
}
