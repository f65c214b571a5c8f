package chaos

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ratingslab/lab/lab/load"
	"github.com/ratingslab/lab/services/lib/duration"
)

// Experiment is one experiment file (experiments/README.md documents the
// format). It is decoded from YAML nodes so that every error names the
// field and its line.
type Experiment struct {
	Title       string   `json:"title"`
	Description string   `json:"description,omitempty"`
	Variants    []string `json:"variants"`
	Requires    Requires `json:"requires,omitzero"`
	// Resilience sets the RPC callers' breakers and retries at runtime for
	// the run; two entries run back to back on the same lab, compared.
	Resilience  []Resilience `json:"resilience,omitempty"`
	Load        Load         `json:"load"`
	SteadyState SteadyState  `json:"steady_state"`
	Method      []Step       `json:"method"`
	Rollbacks   []Rollback   `json:"rollbacks,omitempty"`
	// Drain is how long, after the load ended, the runner waits for every
	// variant to catch up (consumer lag 0, view complete) before the audit.
	Drain duration.Duration `json:"drain"`

	// Overrides are the fields set from the command line (--set, --rate,
	// --duration, --seed), already applied to the fields above.
	Overrides []Override `json:"overrides,omitempty"`

	// File is where the experiment was read from.
	File string `json:"-"`
	// lines maps a field path ("method[1].at") to its line in File.
	lines map[string]int
}

// Requires are lab switches the experiment needs (they are `lab up` flags).
type Requires struct {
	Breakers string `json:"breakers,omitempty"` // "on" | "off"
	Delivery string `json:"delivery,omitempty"` // "effectively-once" | "at-least-once" | "transactional"
	Kafka    string `json:"kafka,omitempty"`    // "embedded" | "cluster" (lab up --kafka)
	// Replicas is a part's replica count the experiment needs, as lab up
	// takes it ("ratings-stream=2"): the lab must run at least that many.
	Replicas string `json:"replicas,omitempty"`
}

// Load is the load profile: a scenario (loadtests/scenarios) plus overrides.
type Load struct {
	Scenario string            `json:"scenario"`
	Rate     float64           `json:"rate,omitempty"`
	Duration duration.Duration `json:"duration,omitempty"`
	Seed     *uint32           `json:"seed,omitempty"`
	// Retries, when set, has the load generator send a rating again with
	// the same request id when its outcome was unknown (504, no answer).
	Retries *Retries `json:"retries,omitempty"`
}

// Retries is the load generator's retry of unknown outcomes (load.RetryPolicy).
type Retries struct {
	Max     int               `json:"max"`
	Backoff duration.Duration `json:"backoff"`
}

// RetryPolicy is the load generator's policy: none unless retries are set.
func (l Load) RetryPolicy() load.RetryPolicy {
	if l.Retries == nil {
		return load.RetryPolicy{}
	}
	return load.RetryPolicy{Max: l.Retries.Max, Backoff: l.Retries.Backoff.D()}
}

// SteadyState is the hypothesis: probes with tolerances, checked before the
// first fault, continuously while faults are active, and after.
type SteadyState struct {
	// Warmup is left out of the "before" window (connections, caches).
	Warmup duration.Duration `json:"warmup"`
	// Window is the trailing window the probes look at, each second, while
	// faults are active.
	Window duration.Duration `json:"window"`
	// Recovery is the time allowed after the last heal before the "after"
	// window starts.
	Recovery duration.Duration `json:"recovery"`
	Probes   []Probe           `json:"probes"`
}

// Probe is one measurement with its tolerance.
type Probe struct {
	Name  string `json:"name"`
	Probe string `json:"probe"`
	// Min or Max is the tolerance, as written ("0.99", "500ms", "100").
	Min string `json:"min,omitempty"`
	Max string `json:"max,omitempty"`
	// During overrides the tolerance while faults are active; DuringSkip
	// leaves the probe out of the "during" checks.
	During     *Tolerance `json:"during,omitempty"`
	DuringSkip bool       `json:"during_skip,omitempty"`
	// Variants limits the probe to some variants (default: all).
	Variants []string `json:"variants,omitempty"`
	// Why explains a tolerance that departs from the lab's SLO (required
	// then: the SLO is the same for every experiment and variant).
	Why string `json:"why,omitempty"`
}

// Tolerance is a min or max bound, as written.
type Tolerance struct {
	Min string `json:"min,omitempty"`
	Max string `json:"max,omitempty"`
}

// Step is one fault of the method, or one action (a change a user makes
// to the lab while the load runs, such as a catalog edit).
type Step struct {
	// Fault is an equivalent from the mapping table ("movies-outage"), or a
	// fault of the catalog ("latency") with Targets.
	Fault string `json:"fault,omitempty"`
	// Action is an action instead of a fault ("movie-add"), with its
	// fields below.
	Action string `json:"action,omitempty"`
	// Movie is the movie a movie-add puts into the legacy catalog, as
	// `lab data movie add` would.
	Movie *MovieSpec `json:"movie,omitempty"`
	// Share of the ratings sent after a movie-add that rate the new movie.
	Share float64 `json:"share,omitempty"`
	// Target is the one edge or part a catalog fault hits (its variant is
	// the target's); Targets maps each variant to its own edge or part.
	Target  string            `json:"target,omitempty"`
	Targets map[string]string `json:"targets,omitempty"`
	Params  map[string]string `json:"params,omitempty"`
	At      duration.Duration `json:"at"`
	For     duration.Duration `json:"for,omitempty"`
}

// MovieSpec is a movie of a movie-add action, by the fields movies-rpc
// serves (ID 0: the next free id).
type MovieSpec struct {
	ID          int64    `json:"movie_id,omitempty"`
	Title       string   `json:"title"`
	ReleaseYear int      `json:"release_year"`
	Country     string   `json:"country,omitempty"`
	Genres      []string `json:"genres,omitempty"`
}

// Rollback is an action run after the faults were healed, even when the
// run was interrupted.
type Rollback struct {
	Action string `json:"action"`         // start | resume | restart | heal-all
	Part   string `json:"part,omitempty"` // for start, resume, restart
}

// Defaults of the format.
const (
	DefaultWarmup   = 3 * time.Second
	DefaultWindow   = 5 * time.Second
	DefaultRecovery = 10 * time.Second
	DefaultDrain    = 20 * time.Second
	MaxDrain        = 10 * time.Minute
)

// Line returns the line of a field path, or of its nearest parent that has
// one (0 when unknown).
func (e *Experiment) Line(path string) int {
	for p := path; p != ""; {
		if l, ok := e.lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

// FieldError is a problem with one field of an experiment file.
type FieldError struct {
	File  string
	Line  int
	Field string
	Msg   string
	// Set is the command-line override the bad value came from, if any.
	Set *Override
}

func (e *FieldError) Error() string {
	if e.Set != nil {
		msg := "--set " + e.Set.String() + " (" + e.File + "): "
		if e.Field != "" && e.Field != e.Set.Path {
			msg += e.Field + ": "
		}
		return msg + e.Msg
	}
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
	}
	if e.Field == "" {
		return loc + ": " + e.Msg
	}
	return loc + ": " + e.Field + ": " + e.Msg
}

// fieldErr builds a FieldError at a path of e.
func (e *Experiment) fieldErr(path, format string, args ...any) error {
	return e.blame(&FieldError{File: e.File, Line: e.Line(path), Field: path, Msg: fmt.Sprintf(format, args...)})
}

// Parse reads an experiment file. It checks the shape and the types of
// every field; Validate checks it against the lab.
func Parse(data []byte, file string) (*Experiment, error) { return ParseWith(data, file, nil) }

// decoder walks the YAML node tree of an experiment.
type decoder struct{ exp *Experiment }

func (d *decoder) errAt(n *yaml.Node, path, format string, args ...any) error {
	return &FieldError{File: d.exp.File, Line: n.Line, Field: path, Msg: fmt.Sprintf(format, args...)}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// mapping reads a mapping node, rejecting unknown and repeated keys.
func (d *decoder) mapping(n *yaml.Node, path string, allowed ...string) (map[string]*yaml.Node, error) {
	if n.Kind != yaml.MappingNode {
		return nil, d.errAt(n, path, "want a mapping of %s, got %s", strings.Join(allowed, ", "), kindOf(n))
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := k.Value
		if !contains(allowed, key) {
			return nil, d.errAt(k, join(path, key), "unknown field (valid: %s)", strings.Join(allowed, ", "))
		}
		if _, dup := out[key]; dup {
			return nil, d.errAt(k, join(path, key), "appears twice")
		}
		out[key] = v
		d.exp.lines[join(path, key)] = v.Line
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func kindOf(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "something else"
}

func (d *decoder) scalar(n *yaml.Node, path string) (string, error) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return "", d.errAt(n, path, "want a single value, got %s", kindOf(n))
	}
	return n.Value, nil
}

func (d *decoder) str(n *yaml.Node, path string) (string, error) {
	s, err := d.scalar(n, path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(s), nil
}

func (d *decoder) duration(n *yaml.Node, path string) (duration.Duration, error) {
	s, err := d.scalar(n, path)
	if err != nil {
		return 0, err
	}
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, d.errAt(n, path, "want a duration such as 10s or 1m30s, got %q", s)
	}
	if v < 0 {
		return 0, d.errAt(n, path, "must not be negative, got %s", v)
	}
	return duration.Duration(v), nil
}

func (d *decoder) number(n *yaml.Node, path string) (float64, error) {
	s, err := d.scalar(n, path)
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, d.errAt(n, path, "want a number, got %q", s)
	}
	return f, nil
}

func (d *decoder) list(n *yaml.Node, path string) ([]*yaml.Node, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, d.errAt(n, path, "want a list, got %s", kindOf(n))
	}
	for i, c := range n.Content {
		d.exp.lines[fmt.Sprintf("%s[%d]", path, i)] = c.Line
	}
	return n.Content, nil
}

// strings reads a list of values, or a single comma-separated value.
func (d *decoder) strings(n *yaml.Node, path string) ([]string, error) {
	if n.Kind == yaml.ScalarNode {
		var out []string
		for _, s := range strings.Split(n.Value, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out, nil
	}
	items, err := d.list(n, path)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(items))
	for i, it := range items {
		s, err := d.str(it, fmt.Sprintf("%s[%d]", path, i))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// stringMap reads a mapping of names to single values.
func (d *decoder) stringMap(n *yaml.Node, path string) (map[string]string, error) {
	if n.Kind != yaml.MappingNode {
		return nil, d.errAt(n, path, "want a mapping of name: value, got %s", kindOf(n))
	}
	out := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		p := join(path, k.Value)
		if _, dup := out[k.Value]; dup {
			return nil, d.errAt(k, p, "appears twice")
		}
		s, err := d.str(v, p)
		if err != nil {
			return nil, err
		}
		out[k.Value] = s
		d.exp.lines[p] = v.Line
	}
	return out, nil
}

func (d *decoder) experiment(n *yaml.Node) error {
	e := d.exp
	e.lines[""] = n.Line
	m, err := d.mapping(n, "", "title", "description", "variants", "requires", "resilience", "load", "steady_state", "method", "rollbacks", "drain")
	if err != nil {
		return err
	}
	for _, req := range []string{"title", "load", "steady_state", "method"} {
		if m[req] == nil {
			return &FieldError{File: e.File, Line: n.Line, Field: req, Msg: "is required"}
		}
	}
	if e.Title, err = d.str(m["title"], "title"); err != nil {
		return err
	}
	if v := m["description"]; v != nil {
		if e.Description, err = d.scalar(v, "description"); err != nil {
			return err
		}
	}
	if v := m["variants"]; v != nil {
		if e.Variants, err = d.strings(v, "variants"); err != nil {
			return err
		}
		if len(e.Variants) == 0 {
			return d.errAt(v, "variants", "is empty: leave it out to run every variant, or name them (rpc, stream)")
		}
	}
	if v := m["requires"]; v != nil {
		rm, err := d.mapping(v, "requires", "breakers", "delivery", "kafka", "replicas")
		if err != nil {
			return err
		}
		if x := rm["breakers"]; x != nil {
			if e.Requires.Breakers, err = d.onOff(x, "requires.breakers"); err != nil {
				return err
			}
		}
		if x := rm["delivery"]; x != nil {
			if e.Requires.Delivery, err = d.str(x, "requires.delivery"); err != nil {
				return err
			}
		}
		if x := rm["kafka"]; x != nil {
			if e.Requires.Kafka, err = d.str(x, "requires.kafka"); err != nil {
				return err
			}
		}
		if x := rm["replicas"]; x != nil {
			if e.Requires.Replicas, err = d.str(x, "requires.replicas"); err != nil {
				return err
			}
		}
	}
	if v := m["resilience"]; v != nil {
		if err := d.resilience(v); err != nil {
			return err
		}
		if m["requires"] != nil && e.Requires.Breakers != "" {
			return d.errAt(v, "resilience", "sets the breakers at runtime: leave requires.breakers out")
		}
	}
	if err := d.load(m["load"]); err != nil {
		return err
	}
	if err := d.steadyState(m["steady_state"]); err != nil {
		return err
	}
	steps, err := d.list(m["method"], "method")
	if err != nil {
		return err
	}
	for i, s := range steps {
		st, err := d.step(s, fmt.Sprintf("method[%d]", i))
		if err != nil {
			return err
		}
		e.Method = append(e.Method, st)
	}
	if v := m["rollbacks"]; v != nil {
		items, err := d.list(v, "rollbacks")
		if err != nil {
			return err
		}
		for i, it := range items {
			p := fmt.Sprintf("rollbacks[%d]", i)
			rm, err := d.mapping(it, p, "action", "part")
			if err != nil {
				return err
			}
			var rb Rollback
			if rm["action"] == nil {
				return d.errAt(it, p+".action", "is required (start, resume, restart or heal-all)")
			}
			if rb.Action, err = d.str(rm["action"], p+".action"); err != nil {
				return err
			}
			if x := rm["part"]; x != nil {
				if rb.Part, err = d.str(x, p+".part"); err != nil {
					return err
				}
			}
			e.Rollbacks = append(e.Rollbacks, rb)
		}
	}
	e.Drain = duration.Duration(DefaultDrain)
	if v := m["drain"]; v != nil {
		if e.Drain, err = d.duration(v, "drain"); err != nil {
			return err
		}
	}
	return nil
}

// onOff reads on/off; YAML 1.1 readers would turn a bare off into false, so
// booleans are accepted too.
func (d *decoder) onOff(n *yaml.Node, path string) (string, error) {
	s, err := d.str(n, path)
	if err != nil {
		return "", err
	}
	switch strings.ToLower(s) {
	case "on", "true", "yes":
		return "on", nil
	case "off", "false", "no":
		return "off", nil
	}
	return "", d.errAt(n, path, "want on or off, got %q", s)
}

func (d *decoder) load(n *yaml.Node) error {
	l := &d.exp.Load
	m, err := d.mapping(n, "load", "scenario", "rate", "duration", "seed", "retries")
	if err != nil {
		return err
	}
	if m["scenario"] == nil {
		return d.errAt(n, "load.scenario", "is required (a scenario name from loadtests/scenarios, or a file)")
	}
	if l.Scenario, err = d.str(m["scenario"], "load.scenario"); err != nil {
		return err
	}
	if v := m["rate"]; v != nil {
		if l.Rate, err = d.number(v, "load.rate"); err != nil {
			return err
		}
		if l.Rate <= 0 {
			return d.errAt(v, "load.rate", "must be more than 0 requests/s, got %v", l.Rate)
		}
	}
	if v := m["duration"]; v != nil {
		if l.Duration, err = d.duration(v, "load.duration"); err != nil {
			return err
		}
		if l.Duration <= 0 {
			return d.errAt(v, "load.duration", "must be more than 0")
		}
	}
	if v := m["seed"]; v != nil {
		s, err := d.str(v, "load.seed")
		if err != nil {
			return err
		}
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return d.errAt(v, "load.seed", "want a whole number from 0 to %d, got %q", uint32(1<<32-1), s)
		}
		seed := uint32(n)
		l.Seed = &seed
	}
	if v := m["retries"]; v != nil {
		rm, err := d.mapping(v, "load.retries", "max", "backoff")
		if err != nil {
			return err
		}
		r := &Retries{Backoff: duration.Duration(load.DefaultRetryBackoff)}
		if x := rm["max"]; x != nil {
			s, err := d.str(x, "load.retries.max")
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(s)
			if err != nil {
				return d.errAt(x, "load.retries.max", "want a whole number from 0 to %d, got %q", load.MaxRetries, s)
			}
			r.Max = n
		} else {
			return d.errAt(v, "load.retries.max", "is required: how many times a rating of unknown outcome is sent again (1 to %d)", load.MaxRetries)
		}
		if x := rm["backoff"]; x != nil {
			if r.Backoff, err = d.duration(x, "load.retries.backoff"); err != nil {
				return err
			}
		}
		if err := (load.RetryPolicy{Max: r.Max, Backoff: r.Backoff.D()}).Validate(); err != nil {
			return d.errAt(v, "load.retries."+err.Field, "%s", err.Msg)
		}
		l.Retries = r
	}
	return nil
}

func (d *decoder) steadyState(n *yaml.Node) error {
	ss := &d.exp.SteadyState
	ss.Warmup, ss.Window, ss.Recovery = duration.Duration(DefaultWarmup), duration.Duration(DefaultWindow), duration.Duration(DefaultRecovery)
	m, err := d.mapping(n, "steady_state", "warmup", "window", "recovery", "probes")
	if err != nil {
		return err
	}
	for key, dst := range map[string]*duration.Duration{"warmup": &ss.Warmup, "window": &ss.Window, "recovery": &ss.Recovery} {
		if v := m[key]; v != nil {
			if *dst, err = d.duration(v, "steady_state."+key); err != nil {
				return err
			}
		}
	}
	if m["probes"] == nil {
		return d.errAt(n, "steady_state.probes", "is required: at least one probe")
	}
	items, err := d.list(m["probes"], "steady_state.probes")
	if err != nil {
		return err
	}
	if len(items) == 0 {
		return d.errAt(m["probes"], "steady_state.probes", "is empty: at least one probe")
	}
	for i, it := range items {
		p := fmt.Sprintf("steady_state.probes[%d]", i)
		pm, err := d.mapping(it, p, "name", "probe", "min", "max", "during", "variants", "why")
		if err != nil {
			return err
		}
		var pr Probe
		if pm["probe"] == nil {
			return d.errAt(it, p+".probe", "is required (one of %s)", strings.Join(probeNames(), ", "))
		}
		if pr.Probe, err = d.str(pm["probe"], p+".probe"); err != nil {
			return err
		}
		if v := pm["name"]; v != nil {
			if pr.Name, err = d.str(v, p+".name"); err != nil {
				return err
			}
		}
		if v := pm["min"]; v != nil {
			if pr.Min, err = d.str(v, p+".min"); err != nil {
				return err
			}
		}
		if v := pm["max"]; v != nil {
			if pr.Max, err = d.str(v, p+".max"); err != nil {
				return err
			}
		}
		if v := pm["during"]; v != nil {
			if v.Kind == yaml.ScalarNode && v.Value == "skip" {
				pr.DuringSkip = true
			} else {
				dm, err := d.mapping(v, p+".during", "min", "max")
				if err != nil {
					return d.errAt(v, p+".during", "want skip, or a mapping with min or max")
				}
				t := &Tolerance{}
				if x := dm["min"]; x != nil {
					if t.Min, err = d.str(x, p+".during.min"); err != nil {
						return err
					}
				}
				if x := dm["max"]; x != nil {
					if t.Max, err = d.str(x, p+".during.max"); err != nil {
						return err
					}
				}
				pr.During = t
			}
		}
		if v := pm["why"]; v != nil {
			if pr.Why, err = d.str(v, p+".why"); err != nil {
				return err
			}
		}
		if v := pm["variants"]; v != nil {
			if pr.Variants, err = d.strings(v, p+".variants"); err != nil {
				return err
			}
			if len(pr.Variants) == 0 {
				return d.errAt(v, p+".variants", "is empty: leave it out to check every variant, or name them")
			}
		}
		ss.Probes = append(ss.Probes, pr)
	}
	return nil
}

func (d *decoder) step(n *yaml.Node, path string) (Step, error) {
	var st Step
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "action" {
				return d.action(n, path)
			}
		}
	}
	m, err := d.mapping(n, path, "fault", "target", "targets", "params", "at", "for")
	if err != nil {
		return st, err
	}
	if m["fault"] == nil {
		return st, d.errAt(n, path+".fault", "is required (or action, for an action such as movie-add)")
	}
	if st.Fault, err = d.str(m["fault"], path+".fault"); err != nil {
		return st, err
	}
	if m["at"] == nil {
		return st, d.errAt(n, path+".at", "is required: when the fault starts, from the start of the load (e.g. 10s)")
	}
	if st.At, err = d.duration(m["at"], path+".at"); err != nil {
		return st, err
	}
	if v := m["for"]; v != nil {
		if st.For, err = d.duration(v, path+".for"); err != nil {
			return st, err
		}
	}
	if v := m["params"]; v != nil {
		if st.Params, err = d.stringMap(v, path+".params"); err != nil {
			return st, err
		}
	}
	if v := m["targets"]; v != nil {
		if st.Targets, err = d.stringMap(v, path+".targets"); err != nil {
			return st, err
		}
	}
	if v := m["target"]; v != nil {
		if st.Targets != nil {
			return st, d.errAt(v, path+".target", "give target or targets, not both")
		}
		if st.Target, err = d.str(v, path+".target"); err != nil {
			return st, err
		}
	}
	return st, nil
}

// Actions a method step can take instead of a fault.
const ActionMovieAdd = "movie-add"

// DefaultMovieAddShare is the share of ratings that rate a new movie.
const DefaultMovieAddShare = 0.2

// action reads a method step that is an action.
func (d *decoder) action(n *yaml.Node, path string) (Step, error) {
	var st Step
	m, err := d.mapping(n, path, "action", "at", "movie", "share")
	if err != nil {
		return st, err
	}
	if st.Action, err = d.str(m["action"], path+".action"); err != nil {
		return st, err
	}
	if st.Action != ActionMovieAdd {
		return st, d.errAt(m["action"], path+".action", "unknown action %q (valid: %s)", st.Action, ActionMovieAdd)
	}
	if m["at"] == nil {
		return st, d.errAt(n, path+".at", "is required: when the movie is added, from the start of the load (e.g. 20s)")
	}
	if st.At, err = d.duration(m["at"], path+".at"); err != nil {
		return st, err
	}
	st.Share = DefaultMovieAddShare
	if v := m["share"]; v != nil {
		if st.Share, err = d.number(v, path+".share"); err != nil {
			return st, err
		}
		if !(st.Share > 0 && st.Share <= 1) {
			return st, d.errAt(v, path+".share", "want the fraction of ratings after the edit that rate the new movie, more than 0 and at most 1, got %v", st.Share)
		}
	}
	if m["movie"] == nil {
		return st, d.errAt(n, path+".movie", "is required: the movie to add (title, release_year; optionally movie_id, country, genres)")
	}
	mp := path + ".movie"
	mm, err := d.mapping(m["movie"], mp, "movie_id", "title", "release_year", "country", "genres")
	if err != nil {
		return st, err
	}
	mv := &MovieSpec{}
	for _, req := range []string{"title", "release_year"} {
		if mm[req] == nil {
			return st, d.errAt(m["movie"], mp+"."+req, "is required")
		}
	}
	if mv.Title, err = d.str(mm["title"], mp+".title"); err != nil {
		return st, err
	}
	year, err := d.number(mm["release_year"], mp+".release_year")
	if err != nil || year != float64(int(year)) {
		return st, d.errAt(mm["release_year"], mp+".release_year", "want a year such as 1975, got %s", kindOf(mm["release_year"]))
	}
	mv.ReleaseYear = int(year)
	if v := mm["movie_id"]; v != nil {
		s, err := d.str(v, mp+".movie_id")
		if err != nil {
			return st, err
		}
		if mv.ID, err = strconv.ParseInt(s, 10, 64); err != nil || mv.ID <= 0 {
			return st, d.errAt(v, mp+".movie_id", "want a positive movie id (or leave it out for the next free id), got %q", s)
		}
	}
	if v := mm["country"]; v != nil {
		if mv.Country, err = d.str(v, mp+".country"); err != nil {
			return st, err
		}
	}
	if v := mm["genres"]; v != nil {
		if mv.Genres, err = d.strings(v, mp+".genres"); err != nil {
			return st, err
		}
	}
	st.Movie = mv
	return st, nil
}
