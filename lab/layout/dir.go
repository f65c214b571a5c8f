package layout

import (
	"fmt"
	"os"
	"path/filepath"
)

// Dir is a lab's state directory (".lab" by default): data, logs, pids,
// ledgers and experiment journals of one lab.
type Dir string

func (d Dir) Path(elem ...string) string {
	return filepath.Join(append([]string{string(d)}, elem...)...)
}

func (d Dir) Logs() string            { return d.Path("logs") }
func (d Dir) Log(part string) string  { return d.Path("logs", part+".log") }
func (d Dir) Data(part string) string { return d.Path("data", part) }
func (d Dir) LegacyDB() string        { return d.Path("data", "legacy", "movies.db") }
func (d Dir) BrokerData() string      { return d.Path("data", "broker") }
func (d Dir) State() string           { return d.Path("lab.json") }
func (d Dir) Ledgers() string         { return d.Path("ledgers") }
func (d Dir) Journals() string        { return d.Path("journals") }
func (d Dir) SupervisorLog() string   { return d.Path("logs", "supervisor.log") }

// Prepare creates the directory tree and proves it is writable.
func (d Dir) Prepare() error {
	for _, p := range []string{d.Logs(), d.Path("data"), d.Path("data", "legacy"), d.Ledgers(), d.Journals()} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return fmt.Errorf("state dir %s is not writable: %w", d, err)
		}
	}
	probe := d.Path(".write-probe")
	if err := os.WriteFile(probe, nil, 0o644); err != nil {
		return fmt.Errorf("state dir %s is not writable: %w", d, err)
	}
	return os.Remove(probe)
}
