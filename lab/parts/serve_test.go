package parts

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Serve is the body of `lab serve` and of lab-part: bad input is refused
// before a part starts, naming what is wrong.
func TestServeRefusesBadInputBeforeStarting(t *testing.T) {
	for _, tc := range []struct {
		name string
		part string
		args []string
		want string
	}{
		{"unknown part", "brokr", nil, `unknown part "brokr"`},
		{"unknown flag", "movies-rpc", []string{"--no-such-flag"}, "lab serve movies-rpc: flag provided but not defined: -no-such-flag"},
		{"stray argument", "movies-rpc", []string{"extra"}, `lab serve movies-rpc: unexpected argument "extra"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := Serve(context.Background(), tc.part, tc.args, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Serve(%q, %q) = %v, want an error containing %q", tc.part, tc.args, err, tc.want)
			}
		})
	}
}

func TestServeHelpListsThePartsFlagsAndStartsNothing(t *testing.T) {
	var stderr bytes.Buffer
	if err := Serve(context.Background(), "movies-rpc", []string{"--help"}, &stderr); err != nil {
		t.Fatalf("--help: %v", err)
	}
	if !strings.Contains(stderr.String(), "-listen") || !strings.Contains(stderr.String(), "-legacy-db") {
		t.Errorf("--help printed %q, want the part's flags (-listen, -legacy-db)", stderr.String())
	}
}
