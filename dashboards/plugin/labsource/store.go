package labsource

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/lab/layout"
)

// run is one readable journal.
type run struct {
	Name string // file name without .json: what `lab report` and queries call it
	Path string
	J    journal.Journal
}

// problem is a journal that could not be read, and why.
type problem struct {
	Name string
	Err  error
}

// store reads the journals of one state dir. Journals are immutable once
// written (renamed into place), so each is parsed once per modification
// time and size.
type store struct {
	dir layout.Dir

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	mod  time.Time
	size int64
	j    journal.Journal
	err  error
}

func newStore(dir string) *store {
	return &store{dir: layout.Dir(dir), cache: map[string]cached{}}
}

// errNoStateDir is a state dir that is not configured.
var errNoStateDir = errors.New("no stateDir is set in the data source settings: past runs (journals, ledgers) are read from the lab's state directory")

// check says whether the journals folder can be listed.
func (s *store) check() error {
	if s == nil {
		return errNoStateDir
	}
	st, err := os.Stat(string(s.dir))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("state dir %s does not exist: set stateDir to the lab's state directory (lab --dir, .lab by default) as the Grafana server sees it", s.dir)
	case err != nil:
		return fmt.Errorf("state dir %s: %w", s.dir, err)
	case !st.IsDir():
		return fmt.Errorf("state dir %s is not a directory", s.dir)
	}
	if _, err := os.ReadDir(s.dir.Journals()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("journals %s cannot be read: %w", s.dir.Journals(), err)
	}
	return nil
}

// all reads every journal, newest start first, and lists those it could not
// read.
func (s *store) all() ([]run, []problem, error) {
	if err := s.check(); err != nil {
		return nil, nil, err
	}
	entries, err := os.ReadDir(s.dir.Journals())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil // a lab that never ran an experiment
	}
	if err != nil {
		return nil, nil, fmt.Errorf("journals %s cannot be read: %w", s.dir.Journals(), err)
	}
	var runs []run
	var problems []problem
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		j, err := s.read(filepath.Join(s.dir.Journals(), e.Name()))
		if err != nil {
			problems = append(problems, problem{Name: name, Err: err})
			continue
		}
		runs = append(runs, run{Name: name, Path: filepath.Join(s.dir.Journals(), e.Name()), J: j})
	}
	sort.SliceStable(runs, func(a, b int) bool { return runs[a].J.Started.After(runs[b].J.Started) })
	return runs, problems, nil
}

// one reads the journal named name (without .json).
func (s *store) one(name string) (run, error) {
	if err := s.check(); err != nil {
		return run{}, err
	}
	if name != filepath.Base(name) || strings.HasPrefix(name, ".") {
		return run{}, fmt.Errorf("run %q: a run is a journal's name in %s, without a path", name, s.dir.Journals())
	}
	path := filepath.Join(s.dir.Journals(), strings.TrimSuffix(name, ".json")+".json")
	j, err := s.read(path)
	if err != nil {
		return run{}, err
	}
	return run{Name: strings.TrimSuffix(name, ".json"), Path: path, J: j}, nil
}

// inRange returns the runs that overlap [from, to] (a run still without an
// end overlaps from its start on).
func (s *store) inRange(from, to time.Time) ([]run, []problem, error) {
	runs, problems, err := s.all()
	if err != nil {
		return nil, nil, err
	}
	var out []run
	for _, r := range runs {
		end := r.J.Ended
		if end.IsZero() {
			end = r.J.Started
		}
		if !r.J.Started.After(to) && !end.Before(from) {
			out = append(out, r)
		}
	}
	return out, problems, nil
}

func (s *store) read(path string) (journal.Journal, error) {
	st, err := os.Stat(path)
	if err != nil {
		return journal.Read(path) // its error names the file
	}
	s.mu.Lock()
	c, ok := s.cache[path]
	s.mu.Unlock()
	if ok && c.mod.Equal(st.ModTime()) && c.size == st.Size() {
		return c.j, c.err
	}
	j, err := journal.Read(path)
	s.mu.Lock()
	s.cache[path] = cached{mod: st.ModTime(), size: st.Size(), j: j, err: err}
	s.mu.Unlock()
	return j, err
}

// ledgerPath finds a run's ledger: in this state dir's ledgers/ by the
// recorded file name first (the state dir may be mounted elsewhere than
// where the lab wrote it, as in compose), then the recorded path.
func (s *store) ledgerPath(j journal.Journal) (string, error) {
	if j.Ledger == "" {
		return "", errors.New("the journal names no ledger")
	}
	for _, p := range []string{filepath.Join(s.dir.Ledgers(), filepath.Base(j.Ledger)), j.Ledger} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("ledger %s not found (looked in %s too)", j.Ledger, s.dir.Ledgers())
}
