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
)

// CurrentVersion is the journal format this code writes and reads. Bump it
// when a field changes meaning; Read rejects any other version by name.
const CurrentVersion = 1

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
	SLO     float64   `json:"slo,omitempty"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`

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
	// Verdict per variant: true when every hypothesis probe held and the
	// audit found nothing.
	Verdict map[string]bool `json:"verdict"`
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
	PlannedAt  Duration `json:"planned_at"`
	PlannedFor Duration `json:"planned_for"`
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
type Sample struct {
	At      time.Time          `json:"at"`
	Variant string             `json:"variant"`
	Values  map[string]float64 `json:"values"`
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
}

// Get returns a value and whether it is present.
func (s Sample) Get(name string) (float64, bool) {
	v, ok := s.Values[name]
	return v, ok
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
	// TimeToDetect: injection → first second with client errors beyond the
	// baseline.
	TimeToDetect *Duration `json:"time_to_detect"`
	// Heal → success ratio back within 1 % of baseline, p99 back, consumer
	// lag back, view converged.
	SuccessRecovered *Duration `json:"success_recovered"`
	P99Recovered     *Duration `json:"p99_recovered"`
	LagRecovered     *Duration `json:"lag_recovered"`
	ViewConverged    *Duration `json:"view_converged"`
	// FailedDuringFault counts client errors (failed + ambiguous) from
	// injection to heal.
	FailedDuringFault int64 `json:"failed_during_fault"`
	// ErrorBudgetBurned is the share (0..1+) of the run's error budget the
	// errors from injection until success recovered consumed.
	ErrorBudgetBurned float64 `json:"error_budget_burned"`
	// Baselines the thresholds derive from (absent series: 0).
	BaselineSuccessRatio float64 `json:"baseline_success_ratio"`
	BaselineP99Seconds   float64 `json:"baseline_p99_seconds"`
	BaselineLag          float64 `json:"baseline_lag"`
	BaselineViewGap      float64 `json:"baseline_view_gap"`
	// Note explains a metric that could not be computed.
	Note string `json:"note,omitempty"`
}

// Duration is a time.Duration written as Go syntax ("1.5s") in JSON.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string such as \"1.5s\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// DurationPtr is a convenience for the optional recovery durations.
func DurationPtr(d time.Duration) *Duration {
	v := Duration(d)
	return &v
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
				return fmt.Errorf("samples[%d].values[%q]: %v is not a number (leave a series without data out)", i, name, v)
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
		return j, fmt.Errorf("journal %s: version %d is not supported (this lab reads version %d); render it with the lab release that wrote it", name, *head.Version, CurrentVersion)
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return j, fmt.Errorf("journal %s: corrupt JSON: %s", name, describeJSONError(b, err))
	}
	if err := j.Validate(); err != nil {
		return j, fmt.Errorf("journal %s: %w", name, err)
	}
	return j, nil
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
