// Package loadtests holds the load scenarios shared by `lab load` and the k6
// scripts next to them. The Go side embeds them so that `lab load --scenario
// steady` works from any directory; k6 reads the same files with open().
package loadtests

import (
	"embed"
	"io/fs"
)

//go:embed scenarios/*.json
var scenarios embed.FS

// Scenarios is the scenarios directory as shipped with this build.
func Scenarios() fs.FS {
	sub, err := fs.Sub(scenarios, "scenarios")
	if err != nil {
		panic(err) // the embedded directory always exists
	}
	return sub
}
