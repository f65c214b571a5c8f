package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/lab/supervisor"
	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/model"
)

// MaxForks is how many forks a lab runs at once: each takes four of the
// port table's fork slots (view, broker, processor, mirror) and one fork
// broker edge.
const MaxForks = 3

// ForkInfo is a fork as stored in <dir>/data/forks/<name>/fork.json.
type ForkInfo struct {
	Name string `json:"name"`
	Slot int    `json:"slot"`
	// From is where in `ratings` the fork starts (record time); zero means
	// the beginning of the log.
	From    time.Time `json:"from,omitzero"`
	Created time.Time `json:"created"`
}

// Group is the fork's consumer group on the lab's broker (the mirror's).
func (f ForkInfo) Group() string { return "fork-" + f.Name }

// ForkProcess is one process of a fork.
type ForkProcess struct {
	Name string // spawned process name
	Role string // broker, mirror, ratings-stream, webserver-stream
	Addr string
}

// Processes are the fork's processes, in start order.
func (f ForkInfo) Processes(l *Lab) []ForkProcess {
	base := 4 * f.Slot
	p := l.Ports
	return []ForkProcess{
		{Name: "fork-" + f.Name + "-broker", Role: "broker", Addr: p.Fork(base + 1)},
		{Name: "fork-" + f.Name + "-mirror", Role: "mirror", Addr: p.Fork(base + 3)},
		{Name: "fork-" + f.Name + "-ratings-stream", Role: "ratings-stream", Addr: p.Fork(base + 2)},
		{Name: "fork-" + f.Name + "-webserver-stream", Role: "webserver-stream", Addr: p.Fork(base)},
	}
}

// ViewURL is the fork's public API and page (the webservers' API).
func (f ForkInfo) ViewURL(l *Lab) string { return "http://" + l.Ports.Fork(4*f.Slot) }

func (l *Lab) forksDir() string             { return l.Dir.Path("data", "forks") }
func (l *Lab) forkDir(name string) string   { return filepath.Join(l.forksDir(), name) }
func (l *Lab) forkFile(name string) string  { return filepath.Join(l.forkDir(name), "fork.json") }
func (l *Lab) forkBroker(f ForkInfo) string { return f.Processes(l)[0].Addr }

var forkName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,23}$`)

// Forks lists the forks of the lab (running or not), by name.
func (l *Lab) Forks() ([]ForkInfo, error) {
	entries, err := os.ReadDir(l.forksDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []ForkInfo
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		f, err := l.readFork(e.Name())
		if err != nil {
			continue // not a fork (or a half-removed one)
		}
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (l *Lab) readFork(name string) (ForkInfo, error) {
	var f ForkInfo
	b, err := os.ReadFile(l.forkFile(name))
	if err != nil {
		return f, err
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("%s: %w", l.forkFile(name), err)
	}
	return f, nil
}

func (l *Lab) writeFork(f ForkInfo) error {
	if err := os.MkdirAll(l.forkDir(f.Name), 0o755); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(f, "", "  ")
	tmp := l.forkFile(f.Name) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, l.forkFile(f.Name))
}

// ForkSpec starts (or resumes) a fork.
type ForkSpec struct {
	Name string
	// From: zero starts at the beginning of `ratings`.
	From time.Time
	// Wait bounds waiting for the fork to catch up (0: do not wait).
	Wait     time.Duration
	Progress func(ForkProgress)
}

// ForkProgress is how far a fork got.
type ForkProgress struct {
	Mirrored, MirrorTarget   int64 // ratings copied from the lab's log / to copy
	Processed, ProcessTarget int64 // ratings the fork's processor committed / in its log
	ViewCaughtUp             bool
	Elapsed                  time.Duration
}

// StartFork creates a fork starting at spec.From in `ratings` and starts
// its processes, or resumes an existing fork. A new fork's consumer group
// on the lab's broker starts at spec.From on `ratings`.
func (l *Lab) StartFork(ctx context.Context, spec ForkSpec) (ForkInfo, error) {
	if !forkName.MatchString(spec.Name) {
		return ForkInfo{}, fmt.Errorf("--name %q: want 1-24 of a-z 0-9 and -, starting with a letter", spec.Name)
	}
	f, err := l.readFork(spec.Name)
	switch {
	case err == nil:
		if !spec.From.IsZero() && !spec.From.Equal(f.From) {
			return f, fmt.Errorf("fork %s exists, started from %s; remove it first (lab replay fork --name %s --remove) to start it from %s", f.Name, describeFrom(f.From), f.Name, spec.From.Format(time.RFC3339Nano))
		}
	case errors.Is(err, os.ErrNotExist):
		if f, err = l.newFork(ctx, spec); err != nil {
			return f, err
		}
	default:
		return f, err
	}
	if err := l.spawnFork(ctx, f); err != nil {
		return f, err
	}
	if spec.Wait > 0 {
		return f, l.WaitFork(ctx, f, spec.Wait, spec.Progress)
	}
	return f, nil
}

func describeFrom(t time.Time) string {
	if t.IsZero() {
		return "the beginning"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func (l *Lab) newFork(ctx context.Context, spec ForkSpec) (ForkInfo, error) {
	forks, err := l.Forks()
	if err != nil {
		return ForkInfo{}, err
	}
	used := map[int]bool{}
	for _, f := range forks {
		used[f.Slot] = true
	}
	f := ForkInfo{Name: spec.Name, Slot: -1, From: spec.From, Created: time.Now().UTC()}
	for s := range MaxForks {
		if !used[s] {
			f.Slot = s
			break
		}
	}
	if f.Slot < 0 {
		return f, fmt.Errorf("the lab runs at most %d forks; remove one first (lab replay fork --name NAME --remove)", MaxForks)
	}
	// The group's offsets on ratings are the mirror's starting point (the
	// movies table is copied whole).
	strategy := Strategy{Kind: ToEarliest}
	if !spec.From.IsZero() {
		strategy = Strategy{Kind: ToDatetime, Time: spec.From}
	}
	plan, err := PlanReset(ctx, l.Kafka, ResetRequest{Group: f.Group(), Topic: model.TopicRatings, Strategy: strategy})
	if err != nil {
		return f, err
	}
	if err := ExecuteReset(ctx, l.Kafka, plan); err != nil {
		return f, fmt.Errorf("position the fork's group %s: %w", f.Group(), err)
	}
	return f, l.writeFork(f)
}

// spawnFork starts the fork's processes under the supervisor (a process
// that exists with the same arguments is only started again).
func (l *Lab) spawnFork(ctx context.Context, f ForkInfo) error {
	procs := f.Processes(l)
	broker := l.forkBroker(f)
	dir := l.forkDir(f.Name)
	opts, err := l.Options(ctx)
	if err != nil {
		return err
	}
	edges := parts.ForkBrokerEdges(opts, "fork-"+f.Name, f.Slot)
	spawnEdges := make([]supervisor.SpawnEdge, len(edges))
	for i, e := range edges {
		spawnEdges[i] = supervisor.SpawnEdge{Name: e.Name, Listen: e.Listen(l.Ports), Upstream: e.Upstream(l.Ports), Server: e.Server()}
	}
	admin := func(i int) string { return l.Ports.Admin(procs[i].Addr) }
	adminOf := func(addr string) []string { return []string{"--admin-listen", l.Ports.Admin(addr)} }
	specs := []supervisor.SpawnSpec{
		{Args: append([]string{"serve", "broker", "--listen", broker, "--data", filepath.Join(dir, "broker")}, adminOf(broker)...),
			Health: supervisor.SpawnHealth{HTTP: l.Ports.Admin(broker)}},
		{Args: append(append([]string{"replay", "mirror", "--listen", procs[1].Addr, "--group", f.Group(), "--to", broker},
			adminOf(procs[1].Addr)...), parts.KafkaClientArgs(l.Ports, edges...)...),
			Health: supervisor.SpawnHealth{HTTP: admin(1)},
			Edges:  spawnEdges},
		{Args: append(append([]string{"serve", "ratings-stream", "--listen", procs[2].Addr, "--data", filepath.Join(dir, "ratings-stream"), "--brokers", broker}, adminOf(procs[2].Addr)...), l.FormatArgs...),
			Health: supervisor.SpawnHealth{HTTP: admin(2)}},
		{Args: append(append([]string{"serve", "webserver-stream", "--listen", procs[3].Addr, "--data", filepath.Join(dir, "webserver-stream"), "--brokers", broker}, adminOf(procs[3].Addr)...), l.FormatArgs...),
			Health: supervisor.SpawnHealth{HTTP: admin(3)}},
	}
	for i, s := range specs {
		s.Name, s.Group, s.Variant, s.Addr = procs[i].Name, "fork-"+f.Name, "fork", procs[i].Addr
		if _, err := l.Control.Spawn(ctx, s); err != nil {
			return fmt.Errorf("start %s: %w", s.Name, err)
		}
		if i == 0 {
			// Everything else needs the fork's broker.
			if err := l.waitSpawned(ctx, s.Name, 30*time.Second); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitSpawned waits (bounded) until a spawned process is healthy.
func (l *Lab) waitSpawned(ctx context.Context, name string, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for {
		list, err := l.Control.Spawned(ctx)
		if err == nil {
			i := slices.IndexFunc(list, func(s supervisor.SpawnedStatus) bool { return s.Name == name })
			if i < 0 {
				return fmt.Errorf("%s is not spawned", name)
			}
			if list[i].Health == supervisor.HealthOK {
				return nil
			}
			err = fmt.Errorf("%s is %s (%s)", name, list[i].Health, list[i].Error)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting %s: %w", bound, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitFork waits (bounded) until the fork has copied everything the lab's
// `ratings` held when the wait began, its processor has counted all of it
// and its view shows the result.
func (l *Lab) WaitFork(ctx context.Context, f ForkInfo, bound time.Duration, progress func(ForkProgress)) error {
	if progress == nil {
		progress = func(ForkProgress) {}
	}
	start := time.Now()
	deadline := start.Add(bound)
	n, err := partitionCount(ctx, l.Kafka, model.TopicRatings)
	if err != nil {
		return err
	}
	liveEnd, err := l.Kafka.Offsets(ctx, model.TopicRatings, allPartitions(n))
	if err != nil {
		return err
	}
	fk, err := Dial([]string{l.forkBroker(f)}, l.Log)
	if err != nil {
		return err
	}
	defer fk.Close()
	procs := f.Processes(l)
	viewDB := filepath.Join(l.forkDir(f.Name), "webserver-stream", viewDBFile)
	var lastRated string
	lastReport := time.Time{}
	for {
		p, rated, err := l.forkProgress(ctx, f, fk, n, liveEnd, procs, viewDB)
		p.Elapsed = time.Since(start)
		if err == nil && p.Mirrored >= p.MirrorTarget && p.Processed >= p.ProcessTarget && p.ViewCaughtUp && rated == lastRated {
			progress(p)
			return nil
		}
		lastRated = rated
		if time.Since(lastReport) >= time.Second {
			lastReport = time.Now()
			progress(p)
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("copied %d of %d ratings, counted %d of %d, view caught up: %v", p.Mirrored, p.MirrorTarget, p.Processed, p.ProcessTarget, p.ViewCaughtUp)
			}
			return fmt.Errorf("fork %s not caught up within %s: %w", f.Name, bound, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// forkProgress measures a fork once; rated is the fork's rated-movies end,
// which must stay put between two samples (emissions in flight) before the
// view is called caught up.
func (l *Lab) forkProgress(ctx context.Context, f ForkInfo, fk *kafkaio.Cluster, n int, liveEnd map[int]kafkaio.Bounds, procs []ForkProcess, viewDB string) (ForkProgress, string, error) {
	var p ForkProgress
	committed, err := committedOffsets(ctx, l.Kafka, f.Group(), model.TopicRatings, allPartitions(n))
	if err != nil {
		return p, "", err
	}
	startAt := map[int]int64{}
	if f.From.IsZero() {
		for part, b := range liveEnd {
			startAt[part] = b.First
		}
	} else if startAt, err = offsetsAt(ctx, l.Kafka, model.TopicRatings, allPartitions(n), f.From, liveEnd); err != nil {
		return p, "", err
	}
	for part, b := range liveEnd {
		p.MirrorTarget += b.End - startAt[part]
		if c := committed[model.TopicRatings][part]; c > startAt[part] {
			p.Mirrored += min(c, b.End) - startAt[part]
		}
	}
	forkEnd, err := fk.Offsets(ctx, model.TopicRatings, allPartitions(n))
	if err != nil {
		return p, "", err
	}
	state, err := l.processorOffsets(ctx, procs[2].Addr)
	if err != nil {
		return p, "", err
	}
	for part, b := range forkEnd {
		p.ProcessTarget += b.End - b.First
		if off, ok := state[part]; ok {
			p.Processed += min(off, b.End) - b.First
		}
	}
	ratedEnd, err := fk.Offsets(ctx, model.TopicRatedMovies, allPartitions(n))
	if err != nil {
		return p, "", err
	}
	view, verr := readViewState(ctx, viewDB)
	p.ViewCaughtUp = verr == nil && l.healthy(ctx, procs[3].Addr)
	ends := map[int]int64{}
	for part, b := range ratedEnd {
		if b.End > b.First {
			ends[part] = b.End
		}
	}
	if p.ViewCaughtUp {
		p.ViewCaughtUp = aheadOf(view.Positions[model.TopicRatedMovies], ends)
	}
	return p, describeOffsets(ends), nil
}

// processorOffsets reads a ratings-stream's committed offsets (GET /state).
func (l *Lab) processorOffsets(ctx context.Context, addr string) (map[int]int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/state", nil)
	if err != nil {
		return nil, err
	}
	resp, err := l.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st struct {
		Offsets map[string]int64 `json:"next_offsets"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&st); err != nil {
		return nil, fmt.Errorf("GET %s/state: %w", addr, err)
	}
	out := map[int]int64{}
	for k, v := range st.Offsets {
		p, err := strconv.Atoi(k)
		if err != nil {
			return nil, fmt.Errorf("GET %s/state: partition %q", addr, k)
		}
		out[p] = v
	}
	return out, nil
}

// ForkStatus is a fork and how its processes are.
type ForkStatus struct {
	ForkInfo
	View      string                     `json:"view"`
	Processes []supervisor.SpawnedStatus `json:"processes"`
	Running   bool                       `json:"running"`
}

// ForkStatuses lists every fork with its processes' health.
func (l *Lab) ForkStatuses(ctx context.Context) ([]ForkStatus, error) {
	forks, err := l.Forks()
	if err != nil {
		return nil, err
	}
	spawned, err := l.Control.Spawned(ctx)
	if err != nil {
		return nil, fmt.Errorf("the supervisor does not list spawned processes (%v); was the lab started by this version of lab?", err)
	}
	var out []ForkStatus
	for _, f := range forks {
		st := ForkStatus{ForkInfo: f, View: f.ViewURL(l)}
		for _, p := range f.Processes(l) {
			i := slices.IndexFunc(spawned, func(s supervisor.SpawnedStatus) bool { return s.Name == p.Name })
			if i < 0 {
				st.Processes = append(st.Processes, supervisor.SpawnedStatus{PartStatus: supervisor.PartStatus{Name: p.Name, Addr: p.Addr, Health: supervisor.HealthStopped}})
				continue
			}
			st.Processes = append(st.Processes, spawned[i])
			if spawned[i].PID > 0 {
				st.Running = true
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// StopFork stops a fork's processes; its data and group stay, and
// StartFork resumes it.
func (l *Lab) StopFork(ctx context.Context, name string) error {
	f, err := l.readFork(name)
	if err != nil {
		return fmt.Errorf("--name %s: no such fork (%w)", name, err)
	}
	procs := f.Processes(l)
	for i := len(procs) - 1; i >= 0; i-- {
		if _, err := l.Control.SpawnedAction(ctx, procs[i].Name, supervisor.ActionStop); err != nil && !isUnknown(err) {
			return err
		}
	}
	return nil
}

// RemoveFork stops a fork, forgets its processes and deletes its data and
// its consumer group on the lab's broker.
func (l *Lab) RemoveFork(ctx context.Context, name string) error {
	f, err := l.readFork(name)
	if err != nil {
		return fmt.Errorf("--name %s: no such fork (%w)", name, err)
	}
	procs := f.Processes(l)
	for i := len(procs) - 1; i >= 0; i-- {
		if err := l.Control.RemoveSpawned(ctx, procs[i].Name); err != nil && !isUnknown(err) {
			return err
		}
	}
	if err := waitInactive(ctx, l.Kafka, f.Group(), 15*time.Second); err != nil {
		return err
	}
	res, err := l.Kafka.Client().DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: []string{f.Group()}})
	if err != nil {
		return fmt.Errorf("delete group %s: %w", f.Group(), err)
	}
	if gerr := res.Errors[f.Group()]; gerr != nil && !errors.Is(gerr, kafka.GroupIdNotFound) {
		return fmt.Errorf("delete group %s: %w", f.Group(), gerr)
	}
	return os.RemoveAll(l.forkDir(name))
}

func isUnknown(err error) bool {
	return err != nil && regexp.MustCompile(`unknown part`).MatchString(err.Error())
}
