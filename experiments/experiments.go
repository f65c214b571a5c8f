// Package experiments holds the chaos experiments shipped with the lab
// (README.md documents the format and the mapping table). The Go side
// embeds them so that `lab chaos run movies-outage` works from any
// directory; the files in the working tree take precedence, so an edit
// takes effect without a rebuild.
package experiments

import (
	"embed"
	"io/fs"
)

//go:embed *.yaml
var files embed.FS

// FS is the experiments directory as shipped with this build.
func FS() fs.FS { return files }
