package chaos

import (
	"slices"
	"strings"
	"testing"
)

// A run is named by what varies between the resilience runs; a setting
// left to the lab in one run and set in the other still varies.
func TestResilienceRunsAreNamedByWhatVaries(t *testing.T) {
	for _, tc := range []struct {
		resilience string
		variants   []string
		want       []string
	}{
		{"[{breakers: off}, {breakers: on}]", nil, []string{"breakers-off", "breakers-on"}},
		{"[{breakers: off, retries: 0}, {breakers: off, retries: 3}]", nil, []string{"retries-0", "retries-3"}},
		{"[{breakers: off, retries: 3}, {breakers: on, retries: 3}]", nil, []string{"breakers-off", "breakers-on"}},
		{"[{breakers: off, retries: 1}, {breakers: on, retries: 3}]", nil, []string{"breakers-off-retries-1", "breakers-on-retries-3"}},
		{"[{retries: 2}, {breakers: on, retries: 2}]", nil, []string{"breakers-as-lab", "breakers-on"}},
		{"[{breakers: on, retries: 2}]", nil, []string{"breakers-on-retries-2"}},
		{"[{breakers: off}, {breakers: on}]", []string{"stream"}, nil},
		{"[{breakers: on}]", []string{"stream"}, nil},
		{"[{breakers: on}]", []string{"stream", "rpc"}, []string{"breakers-on"}},
	} {
		t.Run(tc.resilience+" "+strings.Join(tc.variants, ","), func(t *testing.T) {
			e, err := Parse([]byte(strings.Replace(goodExperiment, "title: t\n", "title: t\nresilience: "+tc.resilience+"\n", 1)), "x.yaml")
			if err != nil {
				t.Fatal(err)
			}
			p, err := Validate(e, defaultLab(t), tc.variants)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range p.ResilienceRuns() {
				got = append(got, r.Suffix)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("run names end %q, want %q", got, tc.want)
			}
		})
	}
}
