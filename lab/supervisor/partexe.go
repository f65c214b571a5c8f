package supervisor

import (
	"os"
	"path/filepath"
)

// PartBinaryName is the parts-only binary `make build` puts beside `lab`
// (lab/cmd/lab-part).
const PartBinaryName = "lab-part"

// PartBinary returns the lab-part binary beside the lab binary exe, or ""
// when there is none or it is older than exe (a `go build` of lab alone
// after an older `make build`: its flags may differ, so the parts then run
// as `lab serve`). lab-part links only the parts: every package linked into
// a binary runs its init at start and leaves the pages it touched resident,
// so a part started from it keeps ~7 MiB less resident than from `lab`.
func PartBinary(exe string) string { return sibling(exe, PartBinaryName) }

// SupervisorBinaryName is the supervisor-only binary `make build` puts beside
// `lab` (lab/cmd/lab-supervisor).
const SupervisorBinaryName = "lab-supervisor"

// SupervisorBinary returns the lab-supervisor binary beside the lab binary
// exe, or "" when there is none or it is older than exe (then `lab up` runs
// `lab supervise`, the same supervisor from the larger binary).
func SupervisorBinary(exe string) string { return sibling(exe, SupervisorBinaryName) }

// sibling is the executable name beside exe, if it is not older than exe.
func sibling(exe, name string) string {
	path := filepath.Join(filepath.Dir(exe), name)
	pi, err := os.Stat(path)
	if err != nil || !pi.Mode().IsRegular() || pi.Mode().Perm()&0o111 == 0 {
		return ""
	}
	ei, err := os.Stat(exe)
	if err != nil || pi.ModTime().Before(ei.ModTime()) {
		return ""
	}
	return path
}

// partExe is the binary that runs `serve <part>`.
func (c Config) partExe() string {
	if c.PartExe != "" {
		return c.PartExe
	}
	return c.Exe
}
