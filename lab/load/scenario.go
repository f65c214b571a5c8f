package load

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ratingslab/lab/services/lib/duration"
)

// Scenario is one load profile, read from loadtests/scenarios/<name>.json (or
// .yaml). The same file drives `lab load` and the k6 scripts, so every field
// here has a counterpart in loadtests/lib/scenario.js; loadtests/README.md
// documents the format.
type Scenario struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Seed fixes the request sequence: same seed, same requests. It is a
	// 32-bit number so that the JavaScript generator can use it exactly.
	Seed           uint32            `json:"seed"`
	Arrival        Arrival           `json:"arrival"`
	Mix            Mix               `json:"mix"`
	Movies         Movies            `json:"movies"`
	Users          Users             `json:"users"`
	Ratings        Ratings           `json:"ratings"`
	List           List              `json:"list"`
	RequestTimeout duration.Duration `json:"request_timeout"`
	Thresholds     Thresholds        `json:"thresholds"`
}

// Executor names are k6's, so a scenario maps one to one onto a k6 executor.
const (
	ExecutorConstant = "constant-arrival-rate"
	ExecutorRamping  = "ramping-arrival-rate"
)

// Arrival is the open-model schedule: how many requests start per second,
// independent of how fast they are answered.
type Arrival struct {
	Executor string `json:"executor"`
	// constant-arrival-rate: Rate requests per second for Duration.
	Rate     float64           `json:"rate,omitempty"`
	Duration duration.Duration `json:"duration,omitempty"`
	// ramping-arrival-rate: start at StartRate, then each stage moves the
	// rate linearly to its Target over its Duration (k6 semantics).
	StartRate float64 `json:"start_rate,omitempty"`
	Stages    []Stage `json:"stages,omitempty"`
}

// Stage is one leg of a ramping arrival rate.
type Stage struct {
	Duration duration.Duration `json:"duration"`
	Target   float64           `json:"target"`
}

// Mix weighs the three request kinds; weights need not sum to 1.
type Mix struct {
	Rating float64 `json:"rating"` // POST /api/ratings
	Movie  float64 `json:"movie"`  // GET /api/movies/{id}
	List   float64 `json:"list"`   // GET /api/movies?offset=&limit=
}

// Movies says which movie ids requests use.
type Movies struct {
	MinID int64 `json:"min_id"`
	MaxID int64 `json:"max_id"`
	// Popularity is "uniform" or "zipf" (rank 1 = MinID is the most popular).
	Popularity string  `json:"popularity"`
	ZipfS      float64 `json:"zipf_s,omitempty"`
	// UnknownFraction of rating and movie requests use an id outside the
	// catalog (UnknownMovieBase+k) and expect a rejection.
	UnknownFraction float64 `json:"unknown_fraction"`
}

// Users is the range user ids are drawn from, uniformly.
type Users struct {
	MinID int64 `json:"min_id"`
	MaxID int64 `json:"max_id"`
}

// Ratings is the distribution of rating values.
type Ratings struct {
	// Distribution is "uniform" (Min..Max), "normal" (Mean, StdDev, clamped
	// to Min..Max) or "weighted" (Weights: value → relative weight).
	Distribution string             `json:"distribution"`
	Min          float64            `json:"min"`
	Max          float64            `json:"max"`
	Decimals     int                `json:"decimals"` // 0 or 1
	Mean         float64            `json:"mean,omitempty"`
	StdDev       float64            `json:"stddev,omitempty"`
	Weights      map[string]float64 `json:"weights,omitempty"`
}

// List shapes GET /api/movies requests: a random page of Limit movies.
type List struct {
	Limit int `json:"limit"`
}

// Thresholds are the pass criteria, evaluated by k6 and reported by lab load.
type Thresholds struct {
	// SuccessRate is the minimum fraction of requests answered as expected
	// (2xx, or 4xx for an unknown movie).
	SuccessRate float64 `json:"success_rate"`
	P99Ms       float64 `json:"p99_ms"`
}

// Limits of the format. The unknown-movie ids start far above any catalog.
const (
	UnknownMovieBase  = 900000
	unknownMovieSpan  = 100000
	maxMovieRange     = 1_000_000
	defaultTimeout    = 10 * time.Second
	maxRequestTimeout = 5 * time.Minute
	maxStages         = 100
)

// shortDuration prints d as a schedule is written ("1m", "1m30s", "500ms"),
// which Go and k6 both parse back; duration.Duration's JSON form would say
// "1m0s".
func shortDuration(d time.Duration) string {
	if d%time.Second == 0 {
		s := d.String() // e.g. "1h0m0s"
		s = strings.Replace(s, "h0m0s", "h", 1)
		s = strings.Replace(s, "m0s", "m", 1)
		return s
	}
	return d.String()
}

// ParseScenario reads a scenario in JSON or YAML (format "json" or "yaml"),
// applies defaults and validates it. Unknown fields are errors: a typo in a
// load profile must not silently change the load.
func ParseScenario(data []byte, format string) (*Scenario, error) {
	var jsonData []byte
	switch format {
	case "json":
		jsonData = data
	case "yaml", "yml":
		// One decoding path: YAML is converted to JSON first, so both
		// formats share field names, types and error messages.
		var v any
		if err := yaml.Unmarshal(data, &v); err != nil {
			return nil, fmt.Errorf("not valid YAML: %w", err)
		}
		b, err := json.Marshal(stringKeys(v))
		if err != nil {
			return nil, fmt.Errorf("YAML cannot be mapped to the scenario format: %w", err)
		}
		jsonData = b
	default:
		return nil, fmt.Errorf("unknown scenario format %q (want json or yaml)", format)
	}
	if err := checkDurations(jsonData); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(jsonData))
	dec.DisallowUnknownFields()
	// Defaults are in place before decoding, so only what the file leaves
	// out keeps them: an explicit zero is the file's value, and Validate
	// rejects it where zero is not allowed.
	s := defaultScenario()
	if err := dec.Decode(&s); err != nil {
		return nil, describeDecodeError(err)
	}
	if dec.More() {
		return nil, errors.New("trailing data after the scenario object")
	}
	s.applyDefaults(present(jsonData))
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// checkDurations names a bad duration's field; encoding/json reports a
// custom unmarshaler's error without saying where it was.
func checkDurations(data []byte) error {
	var doc struct {
		Arrival struct {
			Duration any `json:"duration"`
			Stages   []struct {
				Duration any `json:"duration"`
			} `json:"stages"`
		} `json:"arrival"`
		RequestTimeout any `json:"request_timeout"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil // not this check's business; the strict decode names it
	}
	check := func(field string, v any) error {
		if v == nil {
			return nil
		}
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: want a duration string like \"30s\", got %v", field, v)
		}
		if _, err := time.ParseDuration(s); err != nil {
			return fmt.Errorf("%s: want a duration string like \"30s\", got %q", field, s)
		}
		return nil
	}
	if err := check("arrival.duration", doc.Arrival.Duration); err != nil {
		return err
	}
	for i, st := range doc.Arrival.Stages {
		if err := check(fmt.Sprintf("arrival.stages[%d].duration", i), st.Duration); err != nil {
			return err
		}
	}
	return check("request_timeout", doc.RequestTimeout)
}

// stringKeys turns YAML mappings with non-string keys (weights: {8: 3})
// into JSON objects, which only have string keys.
func stringKeys(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = stringKeys(e)
		}
		return t
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[fmt.Sprint(k)] = stringKeys(e)
		}
		return m
	case []any:
		for i, e := range t {
			t[i] = stringKeys(e)
		}
		return t
	}
	return v
}

func describeDecodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("field %s: cannot use a JSON %s here (want %s)", te.Field, te.Value, te.Type)
	}
	if strings.HasPrefix(err.Error(), "json: unknown field") {
		return fmt.Errorf("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return err
}

// defaultScenario holds the default of every field a file may leave out,
// field by field (a file's "movies": {"max_id": 50} keeps min_id 1). Keep
// in sync with parseScenario in loadtests/lib/scenario.js.
func defaultScenario() Scenario {
	return Scenario{
		Movies:         Movies{MinID: 1, MaxID: 100, Popularity: "uniform"},
		Users:          Users{MinID: 1, MaxID: 10000},
		Ratings:        Ratings{Distribution: "uniform", Min: 1, Max: 10},
		List:           List{Limit: 20},
		RequestTimeout: duration.Duration(defaultTimeout),
		Thresholds:     Thresholds{SuccessRate: 0.99, P99Ms: 1000},
	}
}

// present lists the fields a scenario document sets, as "mix" and
// "movies.zipf_s" (top-level fields and those of its sections).
func present(doc []byte) map[string]bool {
	var top map[string]json.RawMessage
	if json.Unmarshal(doc, &top) != nil {
		return nil
	}
	out := map[string]bool{}
	for k, v := range top {
		out[k] = true
		var section map[string]json.RawMessage
		if json.Unmarshal(v, &section) == nil {
			for f := range section {
				out[k+"."+f] = true
			}
		}
	}
	return out
}

// applyDefaults fills the defaults that depend on what the file sets: the
// mix is replaced as a whole (a file's {"movie": 1} is not added to the
// default {"rating": 1}), and zipf_s defaults only for zipf popularity.
func (s *Scenario) applyDefaults(set map[string]bool) {
	if !set["mix"] {
		s.Mix = Mix{Rating: 1}
	}
	if s.Movies.Popularity == "zipf" && !set["movies.zipf_s"] {
		s.Movies.ZipfS = 1
	}
}

// Validate checks every field and names the first bad one.
func (s *Scenario) Validate() error {
	fail := func(field, format string, args ...any) error {
		return fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...))
	}
	if s.Name == "" {
		return fail("name", "is required")
	}
	if err := s.Arrival.validate(true); err != nil {
		return err
	}
	m := s.Mix
	for _, w := range []struct {
		name string
		v    float64
	}{{"mix.rating", m.Rating}, {"mix.movie", m.Movie}, {"mix.list", m.List}} {
		if w.v < 0 || math.IsNaN(w.v) || math.IsInf(w.v, 0) {
			return fail(w.name, "must be a weight >= 0, got %v", w.v)
		}
	}
	if m.Rating+m.Movie+m.List <= 0 {
		return fail("mix", "at least one weight must be > 0")
	}
	mv := s.Movies
	if mv.MinID < 1 || mv.MaxID < mv.MinID {
		return fail("movies", "want 1 <= min_id <= max_id, got min_id %d, max_id %d", mv.MinID, mv.MaxID)
	}
	if mv.MaxID >= UnknownMovieBase {
		return fail("movies.max_id", "must be below %d (ids from there on are the unknown movies)", UnknownMovieBase)
	}
	if mv.MaxID-mv.MinID+1 > maxMovieRange {
		return fail("movies", "at most %d movie ids, got %d", maxMovieRange, mv.MaxID-mv.MinID+1)
	}
	switch mv.Popularity {
	case "uniform":
	case "zipf":
		if !(mv.ZipfS > 0 && mv.ZipfS <= 10) {
			return fail("movies.zipf_s", "must be in (0, 10], got %v", mv.ZipfS)
		}
	default:
		return fail("movies.popularity", "must be uniform or zipf, got %q", mv.Popularity)
	}
	if !(mv.UnknownFraction >= 0 && mv.UnknownFraction <= 1) {
		return fail("movies.unknown_fraction", "must be in [0, 1], got %v", mv.UnknownFraction)
	}
	if s.Users.MinID < 1 || s.Users.MaxID < s.Users.MinID || s.Users.MaxID > math.MaxInt32 {
		return fail("users", "want 1 <= min_id <= max_id <= %d, got min_id %d, max_id %d", math.MaxInt32, s.Users.MinID, s.Users.MaxID)
	}
	if err := s.Ratings.validate(); err != nil {
		return err
	}
	if s.List.Limit < 1 || s.List.Limit > 500 {
		return fail("list.limit", "must be in 1..500, got %d", s.List.Limit)
	}
	if s.RequestTimeout.D() < time.Millisecond || s.RequestTimeout.D() > maxRequestTimeout {
		return fail("request_timeout", "must be between 1ms and %s, got %s", maxRequestTimeout, shortDuration(s.RequestTimeout.D()))
	}
	if !(s.Thresholds.SuccessRate > 0 && s.Thresholds.SuccessRate <= 1) {
		return fail("thresholds.success_rate", "must be in (0, 1], got %v", s.Thresholds.SuccessRate)
	}
	if !(s.Thresholds.P99Ms > 0) {
		return fail("thresholds.p99_ms", "must be > 0, got %v", s.Thresholds.P99Ms)
	}
	return nil
}

// validate checks the schedule. Scenario files must use whole requests per
// second (k6 takes integer rates); command-line overrides may be fractional.
func (a Arrival) validate(wholeRates bool) error {
	rate := func(field string, v float64, allowZero bool) error {
		switch {
		case math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || (!allowZero && v == 0):
			if allowZero {
				return fmt.Errorf("%s: must be a rate >= 0 requests/s, got %v", field, v)
			}
			return fmt.Errorf("%s: must be a rate > 0 requests/s, got %v", field, v)
		case wholeRates && v != math.Trunc(v):
			return fmt.Errorf("%s: must be a whole number of requests/s (k6 needs integers), got %v", field, v)
		}
		return nil
	}
	switch a.Executor {
	case ExecutorConstant:
		if err := rate("arrival.rate", a.Rate, false); err != nil {
			return err
		}
		if a.Duration <= 0 {
			return fmt.Errorf("arrival.duration: must be > 0 for %s", ExecutorConstant)
		}
		if len(a.Stages) > 0 || a.StartRate != 0 {
			return fmt.Errorf("arrival: stages and start_rate belong to %s, not %s", ExecutorRamping, ExecutorConstant)
		}
	case ExecutorRamping:
		if len(a.Stages) == 0 || len(a.Stages) > maxStages {
			return fmt.Errorf("arrival.stages: want 1..%d stages, got %d", maxStages, len(a.Stages))
		}
		if a.Rate != 0 || a.Duration != 0 {
			return fmt.Errorf("arrival: rate and duration belong to %s; %s uses start_rate and stages", ExecutorConstant, ExecutorRamping)
		}
		if err := rate("arrival.start_rate", a.StartRate, true); err != nil {
			return err
		}
		for i, st := range a.Stages {
			if st.Duration <= 0 {
				return fmt.Errorf("arrival.stages[%d].duration: must be > 0", i)
			}
			if err := rate(fmt.Sprintf("arrival.stages[%d].target", i), st.Target, true); err != nil {
				return err
			}
		}
		if a.ExpectedRequests() < 1 {
			return errors.New("arrival: the stages schedule no request at all")
		}
	case "":
		return fmt.Errorf("arrival.executor: is required (%s or %s)", ExecutorConstant, ExecutorRamping)
	default:
		return fmt.Errorf("arrival.executor: must be %s or %s, got %q", ExecutorConstant, ExecutorRamping, a.Executor)
	}
	return nil
}

func (r Ratings) validate() error {
	lo, hi := math.Round(r.Min*10), math.Round(r.Max*10)
	if !(lo >= 10 && hi <= 100 && lo <= hi) || lo != r.Min*10 || hi != r.Max*10 {
		return fmt.Errorf("ratings: want 1 <= min <= max <= 10 with at most one decimal, got min %v, max %v", r.Min, r.Max)
	}
	if r.Decimals != 0 && r.Decimals != 1 {
		return fmt.Errorf("ratings.decimals: must be 0 or 1, got %d", r.Decimals)
	}
	if r.Decimals == 0 && (int(lo)%10 != 0 || int(hi)%10 != 0) {
		return fmt.Errorf("ratings: min and max must be whole numbers when decimals is 0")
	}
	switch r.Distribution {
	case "uniform":
	case "normal":
		if !(r.StdDev > 0) || r.Mean < r.Min || r.Mean > r.Max {
			return fmt.Errorf("ratings: normal wants min <= mean <= max and stddev > 0, got mean %v, stddev %v", r.Mean, r.StdDev)
		}
	case "weighted":
		if _, err := r.weightTable(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("ratings.distribution: must be uniform, normal or weighted, got %q", r.Distribution)
	}
	return nil
}

type weightedValue struct {
	tenths int64
	cum    float64
}

// weightTable orders the weights by value so that Go and JS walk them in the
// same order.
func (r Ratings) weightTable() ([]weightedValue, error) {
	if len(r.Weights) == 0 {
		return nil, errors.New("ratings.weights: required for the weighted distribution")
	}
	type kv struct {
		tenths int64
		w      float64
	}
	var kvs []kv
	for k, w := range r.Weights {
		v, err := strconv.ParseFloat(k, 64)
		t := math.Round(v * 10)
		if err != nil || t != v*10 || t < 10 || t > 100 || (r.Decimals == 0 && int(t)%10 != 0) {
			return nil, fmt.Errorf("ratings.weights: key %q is not a rating 1..10 with the configured decimals", k)
		}
		if !(w >= 0) || math.IsInf(w, 0) {
			return nil, fmt.Errorf("ratings.weights[%q]: must be a weight >= 0, got %v", k, w)
		}
		kvs = append(kvs, kv{int64(t), w})
	}
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].tenths < kvs[j].tenths })
	out := make([]weightedValue, 0, len(kvs))
	var cum float64
	for i, e := range kvs {
		if i > 0 && kvs[i-1].tenths == e.tenths {
			return nil, fmt.Errorf("ratings.weights: value %v appears twice", float64(e.tenths)/10)
		}
		cum += e.w
		out = append(out, weightedValue{e.tenths, cum})
	}
	if cum <= 0 {
		return nil, errors.New("ratings.weights: at least one weight must be > 0")
	}
	return out, nil
}

// segment is a piece of the schedule with a rate moving linearly from `from`
// to `to` requests/s over dur.
type segment struct {
	from, to float64
	dur      time.Duration
}

func (a Arrival) segments() []segment {
	if a.Executor == ExecutorConstant {
		return []segment{{a.Rate, a.Rate, a.Duration.D()}}
	}
	segs := make([]segment, 0, len(a.Stages))
	prev := a.StartRate
	for _, st := range a.Stages {
		segs = append(segs, segment{prev, st.Target, st.Duration.D()})
		prev = st.Target
	}
	return segs
}

// TotalDuration is how long the schedule runs.
func (a Arrival) TotalDuration() time.Duration {
	var d time.Duration
	for _, s := range a.segments() {
		d += s.dur
	}
	return d
}

// ExpectedRequests is how many requests the schedule sends (per variant).
func (a Arrival) ExpectedRequests() uint64 {
	var n float64
	for _, s := range a.segments() {
		n += (s.from + s.to) / 2 * s.dur.Seconds()
	}
	return uint64(math.Floor(n + 1e-9))
}

// PeakRate is the highest rate of the schedule, requests/s.
func (a Arrival) PeakRate() float64 {
	peak := 0.0
	for _, s := range a.segments() {
		peak = math.Max(peak, math.Max(s.from, s.to))
	}
	return peak
}

// Overrides are command-line changes to a scenario.
type Overrides struct {
	Rate     float64       // > 0: constant rate for the whole run
	Duration time.Duration // > 0: new total duration (ramps are stretched)
	Seed     *uint32
}

// Apply returns a copy of s with the overrides applied, validated.
func (s *Scenario) Apply(o Overrides) (*Scenario, error) {
	c := *s
	c.Arrival.Stages = append([]Stage(nil), s.Arrival.Stages...)
	if o.Seed != nil {
		c.Seed = *o.Seed
	}
	if o.Rate < 0 || math.IsNaN(o.Rate) || math.IsInf(o.Rate, 0) {
		return nil, fmt.Errorf("--rate: must be > 0 requests/s, got %v", o.Rate)
	}
	if o.Duration < 0 {
		return nil, fmt.Errorf("--duration: must be > 0, got %s", o.Duration)
	}
	switch {
	case o.Rate > 0:
		d := c.Arrival.TotalDuration()
		if o.Duration > 0 {
			d = o.Duration
		}
		c.Arrival = Arrival{Executor: ExecutorConstant, Rate: o.Rate, Duration: duration.Duration(d)}
	case o.Duration > 0 && c.Arrival.Executor == ExecutorConstant:
		c.Arrival.Duration = duration.Duration(o.Duration)
	case o.Duration > 0:
		// Keep the shape of the ramp, stretched or squeezed to the new length.
		f := float64(o.Duration) / float64(c.Arrival.TotalDuration())
		for i := range c.Arrival.Stages {
			c.Arrival.Stages[i].Duration = duration.Duration(time.Duration(float64(c.Arrival.Stages[i].Duration) * f))
		}
	}
	if err := c.Arrival.validate(false); err != nil {
		return nil, err
	}
	return &c, nil
}

// FindScenario resolves name to a scenario. A name with a slash or a file
// extension is a file path (read from the OS); a bare name is looked up as
// <name>.json, <name>.yaml or <name>.yml in each of dirs in order.
func FindScenario(name string, readFile func(string) ([]byte, error), dirs ...fs.FS) (*Scenario, error) {
	if name == "" {
		return nil, errors.New("--scenario: is required")
	}
	if strings.ContainsAny(name, `/\`) || path.Ext(name) != "" {
		data, err := readFile(name)
		if err != nil {
			return nil, fmt.Errorf("--scenario %s: %w", name, err)
		}
		s, err := ParseScenario(data, formatOf(name))
		if err != nil {
			return nil, fmt.Errorf("scenario file %s: %w", name, err)
		}
		return s, nil
	}
	for _, dir := range dirs {
		for _, ext := range []string{".json", ".yaml", ".yml"} {
			data, err := fs.ReadFile(dir, name+ext)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("scenario %s: %w", name, err)
			}
			s, err := ParseScenario(data, strings.TrimPrefix(ext, "."))
			if err != nil {
				return nil, fmt.Errorf("scenario %s%s: %w", name, ext, err)
			}
			return s, nil
		}
	}
	known, _ := ListScenarios(dirs...)
	return nil, fmt.Errorf("--scenario %s: unknown scenario (known: %s)", name, strings.Join(known, ", "))
}

// ListScenarios returns the scenario names found in dirs, sorted, without duplicates.
func ListScenarios(dirs ...fs.FS) ([]string, error) {
	seen := map[string]bool{}
	var names []string
	for _, dir := range dirs {
		entries, err := fs.ReadDir(dir, ".")
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			ext := path.Ext(e.Name())
			if e.IsDir() || (ext != ".json" && ext != ".yaml" && ext != ".yml") {
				continue
			}
			n := strings.TrimSuffix(e.Name(), ext)
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	sort.Strings(names)
	return names, nil
}

func formatOf(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".yaml", ".yml":
		return "yaml"
	default:
		return "json"
	}
}
