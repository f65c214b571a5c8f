package cli

import (
	"slices"
	"strings"
	"testing"

	"github.com/ratingslab/lab/lab/parts"
)

// --part-flag is checked against the part's own flags before anything
// starts; a good one reaches every replica's command line.
func TestPartFlagsAreCheckedAgainstThePartsFlags(t *testing.T) {
	var o parts.Options
	for _, good := range []string{"webserver-rpc=--max-conns=50", "ratings-rpc=--retries=2", "ratings-stream=--max-inflight=20"} {
		if err := addPartFlag(&o, good); err != nil {
			t.Errorf("%s: %v", good, err)
		}
	}
	if !slices.Equal(o.Extra["webserver-rpc"], []string{"--max-conns=50"}) || len(o.Extra) != 3 {
		t.Errorf("extra flags %v", o.Extra)
	}
	for bad, want := range map[string]string{
		"webserver-rpc=--max-conns=0":   `invalid value "0" for flag -max-conns: want an integer >= 1`,
		"ratings-rpc=--retries=6":       `want an integer from 0 to 5, got "6"`,
		"movies-rpc=--max-inflight=-1":  `want an integer >= 1, got "-1"`,
		"ratings-rpc=--queue-timeout=0": `want a duration > 0`,
		"nowhere=--x=1":                 `unknown part "nowhere"`,
		"ratings-rpc":                   `want part=--flag=value`,
		"ratings-rpc=--no-such=1":       `flag provided but not defined: -no-such`,
		"ratings-rpc=--retries 2":       `flag provided but not defined: -retries 2`,
	} {
		var o parts.Options
		if err := addPartFlag(&o, bad); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error containing %q", bad, err, want)
		}
	}
}
