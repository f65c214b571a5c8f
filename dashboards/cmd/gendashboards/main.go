// Command gendashboards writes the lab's Grafana dashboards, generated from
// the Go code in package dashboards, into dashboards/json (`make dashboards`).
// JSON files there that the generator no longer produces are removed.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/ratingslab/lab/dashboards"
)

func main() {
	if err := run(os.Args, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gendashboards:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	out := fs.String("out", filepath.Join("dashboards", "json"), "directory to write the dashboard JSON files to")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	files, err := dashboards.Generate()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("--out %s: %w", *out, err)
	}
	stale, err := filepath.Glob(filepath.Join(*out, "*.json"))
	if err != nil {
		return err
	}
	var names []string
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		path := filepath.Join(*out, name)
		if err := os.WriteFile(path, files[name], 0o644); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "wrote", path)
	}
	for _, path := range stale {
		if _, ok := files[filepath.Base(path)]; !ok {
			if err := os.Remove(path); err != nil {
				return err
			}
			fmt.Fprintln(stdout, "removed", path)
		}
	}
	return nil
}
