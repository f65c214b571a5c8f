package chaos

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ratingslab/lab/services/lib/variantname"
)

// probeKind is one kind of steady-state probe.
type probeKind struct {
	name string
	// bound is "min" or "max" (the side the tolerance limits), "" for none.
	bound string
	// duration tolerances are written as durations ("500ms").
	duration bool
	// def is the tolerance when the file gives none ("" = required).
	def string
	// only limits the probe to some variants (nil: every variant).
	only []string
	// windowed probes are checked over windows of the load: before the
	// first fault, continuously during, and after recovery.
	windowed bool
	// final probes are checked once more (or only) after the drain.
	final bool
	// reported probes show what was seen and never fail.
	reported bool
	what     string
}

var probeKinds = []probeKind{
	{name: "success_rate", bound: "min", windowed: true,
		what: "share of client requests answered as expected (2xx; 4xx only for a request made invalid on purpose), counted exactly by the load generator"},
	{name: "p99_latency", bound: "max", duration: true, windowed: true,
		what: "99th percentile client latency over the window, from the load generator's per-request latencies (nearest rank, within 0.2 %)"},
	{name: "read_success_rate", bound: "min", windowed: true,
		what: "success_rate of the reads only (movie pages and the list): whether reads stay available while writes fail, the containment a cascade breaks"},
	{name: "read_p99_latency", bound: "max", duration: true, windowed: true,
		what: "p99_latency of the reads only: whether reads stall behind slow writes"},
	{name: "consumer_lag", bound: "max", only: []string{variantname.Stream}, windowed: true, final: true,
		what: "records of `ratings` not durably consumed: the broker's end offsets minus the processor's stored positions, read from outside; unknown (a failure) while either cannot be read; after the drain, its last value"},
	{name: "freshness", bound: "max", duration: true, only: []string{variantname.Stream}, windowed: true,
		what: "99th percentile time from a rating's acceptance to its visibility in the view (lab_view_freshness_seconds, dense buckets: within 9 %)"},
	{name: "view_gap", bound: "max", windowed: true, final: true,
		what: "acknowledged ratings not yet visible in the public API (per movie); after the drain, its last value"},
	{name: "dead_letters", bound: "min", only: []string{variantname.Stream}, final: true,
		what: "records in ratings-dlq since sampling began, read from the broker after the drain: whether records the processor cannot apply were set aside (`min`), not dropped or left blocking their partition"},
	{name: "lost_writes", bound: "max", def: "0", final: true,
		what: "acknowledged ratings missing from the variant's state, by the audit after the drain"},
	{name: "duplicates", bound: "max", def: "0", final: true,
		what: "ratings counted more than once, by the audit after the drain"},
	{name: "phantoms", bound: "max", def: "0", final: true,
		what: "ratings applied although their answer was a definite no (4xx, 503, 500, never sent) — a bug — by the audit after the drain"},
	{name: "ambiguous", final: true, reported: true,
		what: "ratings whose outcome was unknown (504, no answer) and how many of them were applied: reported, either is correct"},
	{name: "retried", bound: "min", def: "0", final: true,
		what: "ratings the load generator sent again with the same request id because their outcome was unknown (load.retries), and how many of those movies' ratings were counted twice; `min` states that the mechanism occurred"},
	{name: "audit", final: true,
		what: "the audit after the drain found no loss, duplicate, phantom, sum mismatch or unexpected 4xx"},
}

// ratio says the probe is a share from 0 to 1.
func (k probeKind) ratio() bool { return strings.HasSuffix(k.name, "success_rate") }

func probeNames() []string {
	out := make([]string, len(probeKinds))
	for i, k := range probeKinds {
		out[i] = k.name
	}
	return out
}

func lookupProbe(name string) (probeKind, bool) {
	for _, k := range probeKinds {
		if k.name == name {
			return k, true
		}
	}
	return probeKind{}, false
}

// bound is one parsed tolerance.
type bound struct {
	set  bool
	min  bool // value is a lower bound
	v    float64
	text string // as written
}

func (b bound) holds(x float64) bool {
	if !b.set {
		return true
	}
	if b.min {
		return x >= b.v
	}
	return x <= b.v
}

// parseBound reads a tolerance of a probe kind.
func (k probeKind) parseBound(minText, maxText string) (bound, error) {
	switch {
	case k.bound == "" && (minText != "" || maxText != ""):
		return bound{}, fmt.Errorf("%s takes no min or max", k.name)
	case k.bound == "min" && maxText != "":
		return bound{}, fmt.Errorf("%s takes a min, not a max", k.name)
	case k.bound == "max" && minText != "":
		return bound{}, fmt.Errorf("%s takes a max, not a min", k.name)
	}
	text := minText + maxText
	if k.bound == "" {
		return bound{}, nil
	}
	if text == "" {
		text = LabSLO.Tolerance(k.name) // the lab's one objective
	}
	if text == "" {
		if k.def == "" {
			return bound{}, fmt.Errorf("%s needs a %s", k.name, k.bound)
		}
		text = k.def
	}
	b := bound{set: true, min: k.bound == "min", text: text}
	if k.duration {
		d, err := time.ParseDuration(text)
		if err != nil || d < 0 {
			return bound{}, fmt.Errorf("want a duration such as 500ms, got %q", text)
		}
		b.v = d.Seconds()
		return b, nil
	}
	v, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return bound{}, fmt.Errorf("want a number >= 0, got %q", text)
	}
	if k.ratio() && v > 1 {
		return bound{}, fmt.Errorf("is a fraction from 0 to 1, got %v", v)
	}
	b.v = v
	return b, nil
}

// describe writes a tolerance for people: "success_rate >= 0.99".
func (k probeKind) describe(b bound) string {
	switch {
	case k.name == "audit":
		return "audit finds nothing"
	case k.reported:
		return k.name + " reported"
	}
	if !b.set {
		return k.name + " ok"
	}
	op := "<="
	if b.min {
		op = ">="
	}
	return k.name + " " + op + " " + b.text
}

// format writes an observed value in the probe's unit.
func (k probeKind) format(v float64) string {
	switch {
	case k.duration:
		return fmtSeconds(v)
	case k.ratio():
		return strconv.FormatFloat(v, 'f', 4, 64)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func fmtSeconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

// buckets is a histogram as upper bound → cumulative count (+Inf included).
type buckets map[float64]float64

func (b buckets) add(o buckets) {
	for le, c := range o {
		b[le] += c
	}
}

func (b buckets) count() float64 { return b[math.Inf(1)] }

// quantile follows Prometheus' histogram_quantile: linear interpolation
// inside the bucket holding the rank; a rank in the +Inf bucket reads as
// the highest finite bound.
func (b buckets) quantile(q float64) (float64, bool) {
	total := b.count()
	if total <= 0 {
		return 0, false
	}
	les := make([]float64, 0, len(b))
	for le := range b {
		les = append(les, le)
	}
	sort.Float64s(les)
	rank := q * total
	prevLE, prevCount := 0.0, 0.0
	for _, le := range les {
		c := b[le]
		if c >= rank {
			if math.IsInf(le, 1) {
				return prevLE, true
			}
			if c == prevCount {
				return le, true
			}
			return prevLE + (le-prevLE)*(rank-prevCount)/(c-prevCount), true
		}
		prevLE, prevCount = le, c
	}
	return prevLE, true
}

// delta returns cur - prev per bucket; a counter that went down (the part
// restarted) counts from zero.
func delta(cur, prev buckets) buckets {
	out := buckets{}
	reset := false
	for le, c := range cur {
		if c < prev[le] {
			reset = true
			break
		}
	}
	for le, c := range cur {
		if reset {
			out[le] = c
		} else {
			out[le] = c - prev[le]
		}
	}
	return out
}

// joinNonEmpty joins the non-empty strings.
func joinNonEmpty(sep string, ss ...string) string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return strings.Join(out, sep)
}
