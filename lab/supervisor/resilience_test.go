package supervisor

import (
	"slices"
	"testing"
)

// A runtime switch rewrites a part's command line, so a restart keeps it.
func TestSetFlagReplacesEveryOccurrenceOrAppends(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{[]string{"serve", "ratings-rpc", "--breakers", "on", "--data", "d"}, []string{"serve", "ratings-rpc", "--breakers", "off", "--data", "d"}},
		{[]string{"serve", "x", "--breakers=on", "--breakers", "on"}, []string{"serve", "x", "--breakers=off", "--breakers", "off"}},
		{[]string{"serve", "x"}, []string{"serve", "x", "--breakers", "off"}},
		{[]string{"serve", "x", "--breakers-extra", "y"}, []string{"serve", "x", "--breakers-extra", "y", "--breakers", "off"}},
	} {
		if got := setFlag(tc.in, "--breakers", "off"); !slices.Equal(got, tc.want) {
			t.Errorf("setFlag(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
