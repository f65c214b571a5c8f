package load

import (
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ratingslab/lab/loadtests"
)

func TestShippedScenariosAreValid(t *testing.T) {
	names, err := ListScenarios(loadtests.Scenarios())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"smoke", "steady", "ramp", "spike"} {
		if !contains(names, want) {
			t.Errorf("scenario %s is not shipped (have %v)", want, names)
		}
	}
	for _, n := range names {
		s, err := FindScenario(n, nil, loadtests.Scenarios())
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if s.Name != n {
			t.Errorf("file %s.json names itself %q; the name must match the file", n, s.Name)
		}
		if s.Arrival.ExpectedRequests() == 0 || s.Arrival.TotalDuration() > 15*time.Minute {
			t.Errorf("%s: schedule %s is empty or longer than the default bound", n, DescribeArrival(s.Arrival))
		}
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

const minimalJSON = `{"name":"m","arrival":{"executor":"constant-arrival-rate","rate":10,"duration":"2s"}}`

func TestScenarioDefaultsFillWhatAFileLeavesOut(t *testing.T) {
	s, err := ParseScenario([]byte(minimalJSON), "json")
	if err != nil {
		t.Fatal(err)
	}
	if s.Mix != (Mix{Rating: 1}) || s.Movies.MinID != 1 || s.Movies.MaxID != 100 || s.Movies.Popularity != "uniform" ||
		s.Users.MinID != 1 || s.Ratings.Min != 1 || s.Ratings.Max != 10 || s.List.Limit != 20 ||
		s.RequestTimeout.D() != 10*time.Second || s.Thresholds.SuccessRate != 0.99 {
		t.Errorf("defaults not applied: %+v", s)
	}
	if got := s.Arrival.ExpectedRequests(); got != 20 {
		t.Errorf("10/s for 2s: want 20 requests, got %d", got)
	}
}

// A section a file sets keeps the defaults of the fields it leaves out,
// except the mix, which is the file's as a whole.
func TestAPartialSectionKeepsTheOtherFieldsDefaults(t *testing.T) {
	s, err := ParseScenario([]byte(`{"name":"p","arrival":{"executor":"constant-arrival-rate","rate":10,"duration":"2s"},
		"mix":{"movie":1},"movies":{"max_id":50,"popularity":"zipf"},"users":{"max_id":20},"thresholds":{"p99_ms":250}}`), "json")
	if err != nil {
		t.Fatal(err)
	}
	if s.Mix != (Mix{Movie: 1}) {
		t.Errorf("mix = %+v, want only the file's movie weight", s.Mix)
	}
	if s.Movies.MinID != 1 || s.Movies.MaxID != 50 || s.Movies.ZipfS != 1 || s.Users.MinID != 1 || s.Users.MaxID != 20 ||
		s.Thresholds.P99Ms != 250 || s.Thresholds.SuccessRate != 0.99 {
		t.Errorf("per-field defaults not kept: movies %+v users %+v thresholds %+v", s.Movies, s.Users, s.Thresholds)
	}
}

func TestYAMLAndJSONDescribeTheSameScenario(t *testing.T) {
	yamlText := `
name: y
seed: 5
arrival:
  executor: ramping-arrival-rate
  start_rate: 0
  stages:
    - {duration: 10s, target: 100}
    - {duration: 1m30s, target: 100}
mix: {rating: 3, movie: 1}
movies: {min_id: 1, max_id: 50, popularity: zipf, zipf_s: 1.1, unknown_fraction: 0.1}
ratings: {distribution: weighted, min: 1, max: 10, decimals: 1, weights: {7.5: 2, 10: 1}}
`
	jsonText := `{"name":"y","seed":5,"arrival":{"executor":"ramping-arrival-rate","start_rate":0,"stages":[{"duration":"10s","target":100},{"duration":"90s","target":100}]},
"mix":{"rating":3,"movie":1},"movies":{"min_id":1,"max_id":50,"popularity":"zipf","zipf_s":1.1,"unknown_fraction":0.1},
"ratings":{"distribution":"weighted","min":1,"max":10,"decimals":1,"weights":{"7.5":2,"10":1}}}`
	y, err := ParseScenario([]byte(yamlText), "yaml")
	if err != nil {
		t.Fatal(err)
	}
	j, err := ParseScenario([]byte(jsonText), "json")
	if err != nil {
		t.Fatal(err)
	}
	gy, _ := NewGenerator(y)
	gj, _ := NewGenerator(j)
	for i := uint64(0); i < 500; i++ {
		a, _ := gy.Request(i)
		b, _ := gj.Request(i)
		if a != b {
			t.Fatalf("request %d differs: yaml %+v, json %+v", i, a, b)
		}
	}
	if got := y.Arrival.ExpectedRequests(); got != 500+9000 {
		t.Errorf("ramp 0→100 over 10s then 100/s for 90s: want 9500 requests, got %d", got)
	}
}

func TestBadScenariosNameTheField(t *testing.T) {
	cases := map[string]struct{ doc, field string }{
		"unknown field":    {`{"name":"x","arival":{}}`, "arival"},
		"no executor":      {`{"name":"x","arrival":{"rate":5,"duration":"1s"}}`, "arrival.executor"},
		"zero rate":        {`{"name":"x","arrival":{"executor":"constant-arrival-rate","rate":0,"duration":"1s"}}`, "arrival.rate"},
		"negative rate":    {`{"name":"x","arrival":{"executor":"constant-arrival-rate","rate":-3,"duration":"1s"}}`, "arrival.rate"},
		"fractional rate":  {`{"name":"x","arrival":{"executor":"constant-arrival-rate","rate":2.5,"duration":"1s"}}`, "arrival.rate"},
		"bad duration":     {`{"name":"x","arrival":{"executor":"constant-arrival-rate","rate":5,"duration":"soon"}}`, "arrival.duration"},
		"timeout type":     {`{"name":"x","arrival":{"executor":"constant-arrival-rate","rate":5,"duration":"1s"},"request_timeout":10}`, "request_timeout"},
		"stage duration":   {`{"name":"x","arrival":{"executor":"ramping-arrival-rate","stages":[{"duration":"0s","target":5}]}}`, "arrival.stages[0].duration"},
		"no stages":        {`{"name":"x","arrival":{"executor":"ramping-arrival-rate","start_rate":5}}`, "arrival.stages"},
		"mixed executors":  {`{"name":"x","arrival":{"executor":"constant-arrival-rate","rate":5,"duration":"1s","stages":[{"duration":"1s","target":1}]}}`, "arrival"},
		"seed too big":     {`{"name":"x","seed":5000000000,"arrival":{"executor":"constant-arrival-rate","rate":5,"duration":"1s"}}`, "seed"},
		"popularity":       {`{"name":"x","arrival":{"executor":"constant-arrival-rate","rate":5,"duration":"1s"},"movies":{"min_id":1,"max_id":9,"popularity":"pareto"}}`, "movies.popularity"},
		"movie range":      {`{"name":"x","arrival":{"executor":"constant-arrival-rate","rate":5,"duration":"1s"},"movies":{"min_id":10,"max_id":9}}`, "movies"},
		"catalog overlaps": {`{"name":"x","arrival":{"executor":"constant-arrival-rate","rate":5,"duration":"1s"},"movies":{"min_id":1,"max_id":900000}}`, "movies.max_id"},
		"unknown fraction": {`{"name":"x","arrival":{"executor":"constant-arrival-rate","rate":5,"duration":"1s"},"movies":{"min_id":1,"max_id":9,"unknown_fraction":1.5}}`, "movies.unknown_fraction"},
		"rating range":     {`{"name":"x","arrival":{"executor":"constant-arrival-rate","rate":5,"duration":"1s"},"ratings":{"min":0,"max":11}}`, "ratings"},
		"decimals":         {`{"name":"x","arrival":{"executor":"constant-arrival-rate","rate":5,"duration":"1s"},"ratings":{"min":1,"max":10,"decimals":2}}`, "ratings.decimals"},
		"weights key":      {`{"name":"x","arrival":{"executor":"constant-arrival-rate","rate":5,"duration":"1s"},"ratings":{"distribution":"weighted","min":1,"max":10,"weights":{"eleven":1}}}`, "ratings.weights"},
		"mix negative":     {`{"name":"x","arrival":{"executor":"constant-arrival-rate","rate":5,"duration":"1s"},"mix":{"rating":-1,"movie":1}}`, "mix.rating"},
		"list limit":       {`{"name":"x","arrival":{"executor":"constant-arrival-rate","rate":5,"duration":"1s"},"list":{"limit":501}}`, "list.limit"},
		"no name":          {`{"arrival":{"executor":"constant-arrival-rate","rate":5,"duration":"1s"}}`, "name"},
		"wrong type":       {`{"name":"x","arrival":{"executor":"constant-arrival-rate","rate":"fast","duration":"1s"}}`, "arrival.rate"},
		// An explicit zero is the file's value, not "use the default".
		"mix of zeros":       {`{"name":"x","arrival":{"executor":"constant-arrival-rate","rate":5,"duration":"1s"},"mix":{"rating":0,"movie":0,"list":0}}`, "mix"},
		"empty mix":          {`{"name":"x","arrival":{"executor":"constant-arrival-rate","rate":5,"duration":"1s"},"mix":{}}`, "mix"},
		"movie ids zero":     {`{"name":"x","arrival":{"executor":"constant-arrival-rate","rate":5,"duration":"1s"},"movies":{"min_id":0,"max_id":0}}`, "movies"},
		"user ids zero":      {`{"name":"x","arrival":{"executor":"constant-arrival-rate","rate":5,"duration":"1s"},"users":{"min_id":0,"max_id":0}}`, "users"},
		"ratings zero":       {`{"name":"x","arrival":{"executor":"constant-arrival-rate","rate":5,"duration":"1s"},"ratings":{"min":0,"max":0}}`, "ratings"},
		"list limit zero":    {`{"name":"x","arrival":{"executor":"constant-arrival-rate","rate":5,"duration":"1s"},"list":{"limit":0}}`, "list.limit"},
		"timeout zero":       {`{"name":"x","arrival":{"executor":"constant-arrival-rate","rate":5,"duration":"1s"},"request_timeout":"0s"}`, "request_timeout"},
		"success rate zero":  {`{"name":"x","arrival":{"executor":"constant-arrival-rate","rate":5,"duration":"1s"},"thresholds":{"success_rate":0}}`, "thresholds.success_rate"},
		"p99 zero":           {`{"name":"x","arrival":{"executor":"constant-arrival-rate","rate":5,"duration":"1s"},"thresholds":{"p99_ms":0}}`, "thresholds.p99_ms"},
		"zipf_s zero":        {`{"name":"x","arrival":{"executor":"constant-arrival-rate","rate":5,"duration":"1s"},"movies":{"popularity":"zipf","zipf_s":0}}`, "movies.zipf_s"},
		"popularity empty":   {`{"name":"x","arrival":{"executor":"constant-arrival-rate","rate":5,"duration":"1s"},"movies":{"popularity":""}}`, "movies.popularity"},
		"distribution empty": {`{"name":"x","arrival":{"executor":"constant-arrival-rate","rate":5,"duration":"1s"},"ratings":{"distribution":""}}`, "ratings.distribution"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseScenario([]byte(c.doc), "json")
			if err == nil {
				t.Fatalf("accepted %s", c.doc)
			}
			if !strings.Contains(err.Error(), c.field) {
				t.Errorf("error %q does not name %s", err, c.field)
			}
		})
	}
}

func TestOverridesReplaceTheSchedule(t *testing.T) {
	s, err := ParseScenario([]byte(`{"name":"r","arrival":{"executor":"ramping-arrival-rate","start_rate":0,"stages":[{"duration":"10s","target":100},{"duration":"30s","target":100}]}}`), "json")
	if err != nil {
		t.Fatal(err)
	}
	seed := uint32(77)
	c, err := s.Apply(Overrides{Rate: 500, Seed: &seed})
	if err != nil {
		t.Fatal(err)
	}
	if c.Arrival.Executor != ExecutorConstant || c.Arrival.Rate != 500 || c.Arrival.TotalDuration() != 40*time.Second || c.Seed != 77 {
		t.Errorf("--rate 500 should make a constant 500/s over the scenario's 40s: %+v seed %d", c.Arrival, c.Seed)
	}
	if s.Arrival.Executor != ExecutorRamping || s.Seed != 0 {
		t.Error("Apply changed the original scenario")
	}
	stretched, err := s.Apply(Overrides{Duration: 80 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if stretched.Arrival.Stages[0].Duration.D() != 20*time.Second || stretched.Arrival.TotalDuration() != 80*time.Second {
		t.Errorf("--duration on a ramp should stretch every stage: %+v", stretched.Arrival.Stages)
	}
	if s.Arrival.Stages[0].Duration.D() != 10*time.Second {
		t.Error("stretching changed the original stages")
	}
	if _, err := s.Apply(Overrides{Rate: -1}); err == nil || !strings.Contains(err.Error(), "--rate") {
		t.Errorf("negative --rate: want an error naming --rate, got %v", err)
	}
	half, err := s.Apply(Overrides{Rate: 0.5, Duration: 10 * time.Second})
	if err != nil || half.Arrival.ExpectedRequests() != 5 {
		t.Errorf("command-line rates may be fractional: %v %v", half, err)
	}
}

func TestFindScenarioLooksInOrderAndListsTheKnownOnes(t *testing.T) {
	first := fstest.MapFS{"steady.yaml": {Data: []byte("name: steady\nseed: 1\narrival: {executor: constant-arrival-rate, rate: 1, duration: 1s}\n")}}
	s, err := FindScenario("steady", nil, first, loadtests.Scenarios())
	if err != nil {
		t.Fatal(err)
	}
	if s.Seed != 1 {
		t.Errorf("the first directory should win; got seed %d", s.Seed)
	}
	_, err = FindScenario("nope", nil, first, loadtests.Scenarios())
	if err == nil || !strings.Contains(err.Error(), "unknown scenario") || !strings.Contains(err.Error(), "spike") {
		t.Errorf("unknown scenario: want an error listing the known ones, got %v", err)
	}
}
