package cli

import "github.com/ratingslab/lab/lab/supervisor"

// optionalExtras returns the optional processes (Prometheus, Grafana) to run
// beside the parts, and notes to print for those that are not installed.
func optionalExtras(g *globals, disabled bool) ([]supervisor.Extra, []string) {
	return nil, nil
}
