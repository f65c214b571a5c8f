package load

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// Options are a `lab load` invocation before anything is checked.
type Options struct {
	Scenario     string  // name or file
	ScenarioDirs []fs.FS // where bare names are looked up, in order
	Variants     []string
	// Known maps every variant name that may be chosen to its base URL.
	Known map[string]string
	// Targeted are the variants --target names. A name that is neither a
	// lab variant (Builtin) nor among Variants is refused: a typo
	// (--target rcp=...) would otherwise be silently ignored.
	Targeted []string
	Builtin  []string
	Rate     string        // "" or a ParseRate string
	Duration time.Duration // 0: the scenario's, unless DurationSet
	// DurationSet says --duration was given: then 0 is an error, not "the
	// scenario's".
	DurationSet bool
	Seed        *uint32
	From        string // ratings file to replay, "" for the scenario's generator
	SkipBad     bool
	Force       bool
	RunID       string    // "" for a fresh one
	Now         time.Time // for the run id
}

// Plan is a checked run: everything `lab load` needs, found valid before a
// single request is sent.
type Plan struct {
	Scenario   *Scenario
	Source     Source // nil: the scenario's generator
	SourceName string
	Targets    []Target
	RunID      string
	// Skipped are the malformed lines of --from dropped by --skip-bad.
	Skipped []LineError
}

var runIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// NewPlan checks every option and names the first bad one.
func NewPlan(o Options) (*Plan, error) {
	s, err := FindScenario(o.Scenario, os.ReadFile, o.ScenarioDirs...)
	if err != nil {
		return nil, err
	}
	var rate float64
	if o.Rate != "" {
		if rate, err = ParseRate(o.Rate); err != nil {
			return nil, err
		}
	}
	if o.Duration < 0 || o.DurationSet && o.Duration == 0 {
		return nil, fmt.Errorf("--duration %s: must be > 0 (leave it out for the scenario's)", o.Duration)
	}
	s, err = s.Apply(Overrides{Rate: rate, Duration: o.Duration, Seed: o.Seed})
	if err != nil {
		return nil, err
	}
	if err := CheckBounds(s.Arrival, o.Force); err != nil {
		return nil, err
	}
	p := &Plan{Scenario: s, SourceName: "scenario"}

	if len(o.Variants) == 0 {
		return nil, fmt.Errorf("--variants: name at least one of %s", strings.Join(sortedKeys(o.Known), ", "))
	}
	for _, v := range o.Variants {
		base, ok := o.Known[v]
		if !ok {
			return nil, fmt.Errorf("--variants: unknown variant %q (known: %s)", v, strings.Join(sortedKeys(o.Known), ", "))
		}
		if slices.ContainsFunc(p.Targets, func(t Target) bool { return t.Variant == v }) {
			return nil, fmt.Errorf("--variants: %s is listed twice", v)
		}
		p.Targets = append(p.Targets, Target{Variant: v, BaseURL: base})
	}
	if err := validateTargets(p.Targets); err != nil {
		return nil, err
	}
	for _, v := range o.Targeted {
		if !slices.Contains(o.Variants, v) && !slices.Contains(o.Builtin, v) {
			return nil, fmt.Errorf("--target %s=%s: %s is not a variant of the lab (%s) nor among --variants %s, so nothing would be sent to it; add it to --variants or fix the name",
				v, o.Known[v], v, strings.Join(o.Builtin, ", "), strings.Join(o.Variants, ","))
		}
	}

	if o.From != "" {
		f, err := os.Open(o.From)
		if err != nil {
			return nil, fmt.Errorf("--from: %w", err)
		}
		src, skipped, err := ReadRatingsFile(f, o.From, o.SkipBad)
		f.Close()
		if err != nil {
			return nil, err
		}
		p.Source, p.Skipped, p.SourceName = src, skipped, "file:"+o.From
	}

	p.RunID = o.RunID
	if p.RunID == "" {
		p.RunID = NewRunID(s.Name, o.Now)
	}
	if !runIDPattern.MatchString(p.RunID) {
		return nil, fmt.Errorf("--run-id %q: want 1-64 letters, digits, '.', '_' or '-'", p.RunID)
	}
	return p, nil
}

// NewRunID names a run: scenario, UTC start time and a random suffix, so two
// runs never share request ids (the services dedupe by request id).
func NewRunID(scenario string, now time.Time) string {
	var b [2]byte
	if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, scenario)
	if len(name) > 32 {
		name = name[:32]
	}
	return fmt.Sprintf("%s-%s-%s", name, now.UTC().Format("20060102T150405Z"), hex.EncodeToString(b[:]))
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
