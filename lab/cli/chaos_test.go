package cli

import (
	"os"
	"strings"
	"testing"
)

// Bad command-line parameters of an experiment are refused naming the flag
// or the --set, before the lab is even asked (nothing can be injected).
func TestChaosRunRefusesBadParametersFirst(t *testing.T) {
	for want, args := range map[string][]string{
		"--set load.rat=5 (experiments/movies-outage.yaml":     {"--set", "load.rat=5"},
		`--set load.rate=fast (experiments/movies-outage.yaml`: {"--set", "load.rate=fast"},
		"--set method[4].at=1s (":                              {"--set", "method[4].at=1s"},
		"--set nothing: want path=value":                       {"--set", "nothing"},
		"--rate fast: want requests per second":                {"--rate", "fast"},
		"--duration soon: want a duration":                     {"--duration", "soon"},
		"--set load.seed=-3 (":                                 {"--seed", "-3"},
		"--repeat 0: want 1 to 50 runs":                        {"--repeat", "0"},
		"--set load.retries.max=11 (":                          {"--set", "load.retries.max=11"},
	} {
		t.Run(want, func(t *testing.T) {
			dir := t.TempDir()
			_, _, err := runLab(t, dir, append([]string{"chaos", "run", "movies-outage"}, args...)...)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("want an error containing %q, got %v", want, err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("a refused run wrote %d entries in its lab directory", len(entries))
			}
		})
	}
	// Valid overrides pass the same checks and reach the lab (none runs here).
	_, _, err := runLab(t, t.TempDir(), "chaos", "run", "movies-outage", "--rate", "20/s", "--duration", "40s",
		"--set", "method[0].at=10s", "--set", "method[0].for=10s")
	if err == nil || !strings.Contains(err.Error(), "is not running") {
		t.Fatalf("valid overrides: want the lab-not-running error, got %v", err)
	}
}
