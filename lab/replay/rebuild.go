package replay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ratingslab/lab/lab/supervisor"
	"github.com/ratingslab/lab/services/model"
)

// Parts a rebuild knows.
const (
	PartRatingsStream   = "ratings-stream"
	PartWebserverStream = "webserver-stream"
	ratingsStreamGroup  = "ratings-stream" // its consumer group (the part's --group default)
)

// RebuildOptions tune a rebuild.
type RebuildOptions struct {
	// Timeout bounds the reprocessing (default 10 minutes).
	Timeout time.Duration
	// KeepBackup keeps the state from before the rebuild (moved aside)
	// even when the rebuilt one is proven equal.
	KeepBackup bool
	// CompareRaw also times a bare kafka-go consumer on the same topics,
	// for the benchmark: while the part is stopped (so the two do not
	// compete), right before it reprocesses them.
	CompareRaw bool
	// Progress, when set, is told how the rebuild is going.
	Progress func(Progress)
}

func (o *RebuildOptions) defaults() {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.Progress == nil {
		o.Progress = func(Progress) {}
	}
}

// Progress is one step or one progress sample of a rebuild.
type Progress struct {
	Phase   string        // stopping, reading, rewinding, wiping, reprocessing, verifying, ...
	Detail  string        // for people
	Done    int64         // records reprocessed so far (reprocessing)
	Total   int64         // records to reach
	Elapsed time.Duration // since the part was started again
}

// RebuildResult is what a rebuild did and proved.
type RebuildResult struct {
	Part      string   `json:"part"`
	Instances []string `json:"instances"`
	Topics    []string `json:"topics"`
	// Events is how many records the part reprocessed; Reprocess the time
	// from starting it again to caught up (process start included);
	// Processing the time from its first committed batch to caught up.
	Events       int64         `json:"events"`
	Reprocess    time.Duration `json:"reprocess_ns"`
	Processing   time.Duration `json:"processing_ns"`
	EventsPerSec float64       `json:"events_per_sec"`
	// ProcessingPerSec excludes the start-up (process, topics, group join).
	ProcessingPerSec float64       `json:"processing_events_per_sec"`
	Total            time.Duration `json:"total_ns"`
	// LogMoved: the log held more than the state before included (lag at
	// the stop, or new records during the rebuild); the proof folds that
	// part of the log into the state before.
	LogMoved bool          `json:"log_moved"`
	Table    ChecksumTable `json:"checksums"`
	Raw      *RawRate      `json:"raw,omitempty"`
	// Backup is where the previous state was kept ("" once deleted).
	Backup []string `json:"backup,omitempty"`
}

// rates derives events/s from the counts and durations. The rate after
// start-up is left out when the first committed batch came too late to
// time the rest (a small log is reprocessed in one or two batches).
func (r *RebuildResult) rates(firstBatch time.Duration) {
	if r.Reprocess > 0 {
		r.EventsPerSec = float64(r.Events) / r.Reprocess.Seconds()
	}
	if firstBatch > 0 {
		r.Processing = r.Reprocess - firstBatch
	}
	if r.Processing >= 100*time.Millisecond {
		r.ProcessingPerSec = float64(r.Events) / r.Processing.Seconds()
	}
}

// restorePlan is the reset that puts a group's offsets back where plan
// found them (partitions without a committed offset stay where plan put
// them: no commit can remove an offset).
func restorePlan(plan *ResetPlan) *ResetPlan {
	back := *plan
	back.Partitions = nil
	for _, p := range plan.Partitions {
		if p.Current >= 0 {
			p.New = p.Current
			back.Partitions = append(back.Partitions, p)
		}
	}
	return &back
}

// ErrNotEqual means the rebuilt state differs from the state before.
var ErrNotEqual = errors.New("the rebuilt state differs from the state before")

// Rebuild runs the rebuild of part (ratings-stream or webserver-stream).
func (l *Lab) Rebuild(ctx context.Context, part string, opts RebuildOptions) (*RebuildResult, error) {
	opts.defaults()
	switch part {
	case PartRatingsStream:
		return l.rebuildRatingsStream(ctx, opts)
	case PartWebserverStream:
		return l.rebuildWebserverStream(ctx, opts)
	}
	return nil, fmt.Errorf("part %q: rebuild knows %s and %s", part, PartRatingsStream, PartWebserverStream)
}

// stopInstances is the common first step of a rebuild: stop the instances
// and report which they are.
func (l *Lab) stopInstances(ctx context.Context, part string, opts RebuildOptions) ([]string, error) {
	insts, err := l.Instances(ctx, part)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, in := range insts {
		names = append(names, in.Name)
	}
	opts.Progress(Progress{Phase: "stopping", Detail: strings.Join(names, ", ")})
	if err := l.act(ctx, names, supervisor.ActionStop); err != nil {
		return nil, err
	}
	return names, nil
}

// backupSuffix names the state moved aside by a rebuild.
const backupSuffix = ".before-rebuild"

// aside is the state a rebuild moved aside, and how to put it back: the
// rebuild never leaves a part stopped, or serving a state it could not prove
// equal (failRebuild).
type aside struct {
	names   []string // the instances of the part
	targets []string // what the rebuild replaces: data dirs or database files
	backups []string // target+backupSuffix, for the targets that existed
	// group is the consumer group's offsets before the rewind (ratings-stream),
	// put back with the state.
	group *ResetPlan
}

// moveAside renames each target to <target>.before-rebuild (replacing an
// older one): the part starts empty, and the old state stays at hand until
// the new one is proven equal.
func (a *aside) moveAside() error {
	for _, t := range a.targets {
		b := t + backupSuffix
		if err := os.RemoveAll(b); err != nil {
			return fmt.Errorf("remove the previous backup %s: %w", b, err)
		}
		if err := os.Rename(t, b); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return fmt.Errorf("move %s aside: %w", t, err)
		}
		a.backups = append(a.backups, b)
	}
	return nil
}

// restoreHint tells people how to put the old state back by hand (when
// putting it back failed too).
func (a *aside) restoreHint() string {
	if len(a.backups) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nThe state from before the rebuild is kept. To put it back: stop %s, then", strings.Join(a.names, ", "))
	for _, t := range a.targets {
		fmt.Fprintf(&b, "\n  rm -rf %s", t)
	}
	for _, bk := range a.backups {
		fmt.Fprintf(&b, "\n  mv %s %s", bk, strings.TrimSuffix(bk, backupSuffix))
	}
	b.WriteString("\nand start it again.")
	return b.String()
}

// putBack restores the state from before: it stops the instances, removes
// what the rebuild wrote, moves the backups back, restores the group's
// offsets, starts the instances and waits (bounded) until they are healthy.
// It runs even when ctx was cancelled (Ctrl-C during the rebuild).
func (l *Lab) putBack(ctx context.Context, a *aside) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 90*time.Second)
	defer cancel()
	if err := l.act(ctx, a.names, supervisor.ActionStop); err != nil {
		return err
	}
	for _, t := range a.targets {
		if err := os.RemoveAll(t); err != nil {
			return fmt.Errorf("remove the rebuilt %s: %w", t, err)
		}
	}
	for _, b := range a.backups {
		if err := os.Rename(b, strings.TrimSuffix(b, backupSuffix)); err != nil {
			return fmt.Errorf("put %s back: %w", b, err)
		}
	}
	a.backups = nil
	if a.group != nil {
		if err := waitInactive(ctx, l.Kafka, a.group.Group, 20*time.Second); err != nil {
			return err
		}
		if err := ExecuteReset(ctx, l.Kafka, a.group); err != nil {
			return fmt.Errorf("restore the offsets of group %s: %w", a.group.Group, err)
		}
	}
	if err := l.act(ctx, a.names, supervisor.ActionStart); err != nil {
		return err
	}
	return l.waitHealthy(ctx, a.names, 30*time.Second)
}

// failRebuild ends a rebuild that failed after the state was moved aside:
// the state from before is put back and the part restarted, and the error
// says so (res, when not nil, still carries what was measured, the table
// with the differences included).
func (l *Lab) failRebuild(ctx context.Context, res *RebuildResult, a *aside, err error) (*RebuildResult, error) {
	names := strings.Join(a.names, ", ")
	if perr := l.putBack(ctx, a); perr != nil {
		if res != nil {
			res.Backup = a.backups
		}
		return res, fmt.Errorf("%w; putting the state from before back failed too: %v%s", err, perr, a.restoreHint())
	}
	if res != nil {
		res.Backup = nil
	}
	return res, fmt.Errorf("%w; the state from before was put back and %s restarted", err, names)
}

func (l *Lab) finish(ctx context.Context, res *RebuildResult, a *aside, opts RebuildOptions) (*RebuildResult, error) {
	if !res.Table.OK() {
		return l.failRebuild(ctx, res, a, fmt.Errorf("%w: %d of %d movie(s) differ (see the table)", ErrNotEqual, res.Table.Mismatches, res.Table.Movies))
	}
	res.Backup = a.backups
	if !opts.KeepBackup {
		for _, b := range a.backups {
			if err := os.RemoveAll(b); err != nil {
				return res, fmt.Errorf("remove the backup %s: %w", b, err)
			}
		}
		res.Backup = nil
	}
	return res, nil
}

func (l *Lab) rebuildRatingsStream(ctx context.Context, opts RebuildOptions) (*RebuildResult, error) {
	started := time.Now()
	o, err := l.Options(ctx)
	if err != nil {
		return nil, err
	}
	if o.Delivery == "at-least-once" {
		return nil, errors.New("ratings-stream runs --delivery=at-least-once: there the group's offsets are the truth and a partition is restored from rated-movies (the changelog), so wiping its database rebuilds nothing from the log; rebuild needs the default effectively-once mode")
	}
	if o.Delivery == "transactional" {
		return nil, errors.New("ratings-stream runs --delivery=transactional: its database is a cache of the " + model.TopicRatingsChangelog + " topic, and a wiped one is restored from there, not rebuilt from the ratings log; rebuild needs the default effectively-once mode")
	}
	k := l.Kafka
	partitions, err := partitionCount(ctx, k, model.TopicRatings)
	if err != nil {
		return nil, err
	}
	names, err := l.stopInstances(ctx, PartRatingsStream, opts)
	if err != nil {
		return nil, err
	}
	res := &RebuildResult{Part: PartRatingsStream, Instances: names, Topics: []string{model.TopicRatings}}
	var dirs, dbs []string
	for _, n := range names {
		dirs = append(dirs, l.Dir.Data(n))
		dbs = append(dbs, filepath.Join(l.Dir.Data(n), streamDBFile))
	}

	// Until the state is moved aside, a failure leaves it as it was and
	// puts the part back in service.
	abort := func(err error) (*RebuildResult, error) {
		if serr := l.act(context.WithoutCancel(ctx), names, supervisor.ActionStart); serr != nil {
			return nil, fmt.Errorf("%w (and starting %s again failed: %v)", err, strings.Join(names, ", "), serr)
		}
		return nil, fmt.Errorf("%w (nothing was changed; %s started again)", err, strings.Join(names, ", "))
	}
	opts.Progress(Progress{Phase: "reading", Detail: "the state before, from " + strings.Join(dbs, ", ")})
	before, err := readStreamState(ctx, dbs)
	if err != nil {
		return abort(fmt.Errorf("read the state before: %w", err))
	}

	opts.Progress(Progress{Phase: "rewinding", Detail: "group " + ratingsStreamGroup + " to the beginning of " + model.TopicRatings})
	if err := waitInactive(ctx, k, ratingsStreamGroup, 20*time.Second); err != nil {
		return abort(err)
	}
	plan, err := PlanReset(ctx, k, ResetRequest{Group: ratingsStreamGroup, Topic: model.TopicRatings, Strategy: Strategy{Kind: ToEarliest}})
	if err != nil {
		return abort(err)
	}
	if err := ExecuteReset(ctx, k, plan); err != nil {
		if rerr := ExecuteReset(context.WithoutCancel(ctx), k, restorePlan(plan)); rerr != nil {
			err = fmt.Errorf("%w (and restoring the group's offsets failed: %v)", err, rerr)
		}
		return abort(err)
	}

	// From here on, any failure puts the state from before back.
	a := &aside{names: names, targets: dirs, group: restorePlan(plan)}
	fail := func(err error) (*RebuildResult, error) { return l.failRebuild(ctx, res, a, err) }
	opts.Progress(Progress{Phase: "wiping", Detail: strings.Join(dirs, ", ")})
	if err := a.moveAside(); err != nil {
		return fail(err)
	}

	bounds, err := k.Offsets(ctx, model.TopicRatings, allPartitions(partitions))
	if err != nil {
		return fail(err)
	}
	target := map[int]int64{}
	var total int64
	for p, b := range bounds {
		target[p] = max(b.End, before.Offsets[p])
		total += target[p] - b.First
	}
	done := func(offs map[int]int64) int64 {
		var n int64
		for p, b := range bounds {
			if off, ok := offs[p]; ok {
				n += off - b.First
			}
		}
		return n
	}

	if opts.CompareRaw {
		opts.Progress(Progress{Phase: "measuring", Detail: "a bare kafka-go consumer on the same topic, while the part is stopped"})
		if res.Raw, err = measureRaw(ctx, k, model.TopicRatings); err != nil {
			return fail(err)
		}
	}

	t0 := time.Now()
	opts.Progress(Progress{Phase: "reprocessing", Detail: fmt.Sprintf("%d records of %s from the beginning", total, model.TopicRatings), Total: total})
	if err := l.act(ctx, names, supervisor.ActionStart); err != nil {
		return fail(err)
	}
	var firstBatch time.Duration
	var reached map[int]int64
	deadline := t0.Add(opts.Timeout)
	lastReport := time.Time{}
	for {
		// Only a read begun within the timeout can show it reached: a
		// rebuild is done within --timeout or not at all.
		began := time.Now()
		offs, err := readStreamOffsets(ctx, dbs)
		if err == nil {
			n := done(offs)
			if n > 0 && firstBatch == 0 {
				firstBatch = time.Since(t0)
			}
			if aheadOf(offs, target) && !began.After(deadline) {
				reached = offs
				break
			}
			if time.Since(lastReport) >= time.Second {
				lastReport = time.Now()
				opts.Progress(Progress{Phase: "reprocessing", Done: n, Total: total, Elapsed: time.Since(t0)})
			}
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("ratings-stream did not reach offsets %s within %s (last read: %v)", describeOffsets(target), opts.Timeout, err))
		}
		select {
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	res.Reprocess = time.Since(t0)
	res.Events = done(reached)
	res.rates(firstBatch)
	opts.Progress(Progress{Phase: "reprocessing", Done: res.Events, Total: total, Elapsed: res.Reprocess})

	opts.Progress(Progress{Phase: "verifying", Detail: "per-movie checksums of the state before and after"})
	if err := l.waitHealthy(ctx, names, 30*time.Second); err != nil {
		return fail(err)
	}
	after, err := readStreamState(ctx, dbs)
	if err != nil {
		return fail(err)
	}
	expected, deltas, err := foldRatings(ctx, k, l.Codec, before.Movies, before.Offsets, after.Offsets, partitions, before.RequestIDs, before.Retention, after.Known)
	if err != nil {
		return fail(err)
	}
	res.LogMoved = !aheadOf(before.Offsets, after.Offsets)
	res.Table = streamTable(before.Movies, expected, after.Movies, deltas)
	res.Total = time.Since(started)
	return l.finish(ctx, res, a, opts)
}

func streamText(m map[int64]Aggregate) rowText {
	return func(id int64) (string, bool) {
		a, ok := m[id]
		return fmt.Sprintf("count=%d sum_tenths=%d", a.Count, a.SumTenths), ok
	}
}

func streamTable(before, expected, after map[int64]Aggregate, deltas map[int64]Delta) ChecksumTable {
	ids := map[int64]bool{}
	for _, m := range []map[int64]Aggregate{before, expected, after} {
		for id := range m {
			ids[id] = true
		}
	}
	list := make([]int64, 0, len(ids))
	for id := range ids {
		list = append(list, id)
	}
	return checksumTable(list, streamText(before), streamText(expected), streamText(after), func(id int64) string {
		if d, ok := deltas[id]; ok {
			return fmt.Sprintf("+%d ratings, +%d tenths", d.Count, d.SumTenths)
		}
		return ""
	})
}

func (l *Lab) rebuildWebserverStream(ctx context.Context, opts RebuildOptions) (*RebuildResult, error) {
	started := time.Now()
	k := l.Kafka
	topics := []string{model.TopicMovies, model.TopicRatedMovies}
	names, err := l.stopInstances(ctx, PartWebserverStream, opts)
	if err != nil {
		return nil, err
	}
	res := &RebuildResult{Part: PartWebserverStream, Instances: names, Topics: topics}
	dir := l.Dir.Data(PartWebserverStream)
	db := filepath.Join(dir, viewDBFile)
	// Only the view is rebuilt: the rest of the data directory (the record
	// of the request ids it took, requests.db) is not in the log.
	a := &aside{names: names, targets: []string{db, db + "-wal", db + "-shm"}}
	fail := func(err error) (*RebuildResult, error) { return l.failRebuild(ctx, res, a, err) }
	addr := l.Ports.WebserverStream()

	opts.Progress(Progress{Phase: "reading", Detail: "the view before, from " + db})
	before, err := readViewState(ctx, db)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		if serr := l.act(context.WithoutCancel(ctx), names, supervisor.ActionStart); serr != nil {
			return nil, fmt.Errorf("read the view before: %w (and starting it again failed: %v)", err, serr)
		}
		return nil, fmt.Errorf("read the view before: %w (nothing was changed; webserver-stream started again)", err)
	}
	if before.Movies == nil {
		before = ViewState{Movies: map[int64]ViewMovie{}, Positions: map[string]map[int]int64{}}
	}
	opts.Progress(Progress{Phase: "wiping", Detail: db + " (the view keeps its positions in its own database; no consumer group to rewind)"})
	if err := a.moveAside(); err != nil {
		return fail(err)
	}

	target, firsts := map[string]map[int]int64{}, map[string]map[int]int64{}
	var total int64
	for _, topic := range topics {
		n, err := partitionCount(ctx, k, topic)
		if err != nil {
			return fail(err)
		}
		bounds, err := k.Offsets(ctx, topic, allPartitions(n))
		if err != nil {
			return fail(err)
		}
		target[topic], firsts[topic] = map[int]int64{}, map[int]int64{}
		for p, b := range bounds {
			firsts[topic][p] = b.First
			if b.End > b.First {
				target[topic][p] = max(b.End, before.Positions[topic][p])
				total += b.End - b.First
			}
		}
	}
	consumed := func() int64 {
		var n int64
		for _, topic := range topics {
			c, _ := l.consumed(ctx, addr, topic)
			n += c
		}
		return n
	}

	if opts.CompareRaw {
		opts.Progress(Progress{Phase: "measuring", Detail: "a bare kafka-go consumer on the same topics, while the part is stopped"})
		if res.Raw, err = measureRaw(ctx, k, topics...); err != nil {
			return fail(err)
		}
	}

	t0 := time.Now()
	opts.Progress(Progress{Phase: "reprocessing", Detail: fmt.Sprintf("%s and %s from the beginning (offset span %d; compaction leaves fewer records)", model.TopicMovies, model.TopicRatedMovies, total), Total: total})
	if err := l.act(ctx, names, supervisor.ActionStart); err != nil {
		return fail(err)
	}
	var firstBatch time.Duration
	var reached map[string]map[int]int64
	deadline := t0.Add(opts.Timeout)
	lastReport := time.Time{}
	for {
		began := time.Now() // as for ratings-stream: a read begun within the timeout
		st, err := readViewState(ctx, db)
		if err == nil {
			caughtUp := true
			for _, topic := range topics {
				if !aheadOf(st.Positions[topic], target[topic]) {
					caughtUp = false
				}
			}
			span := positionSpan(st.Positions, firsts)
			if span > 0 && firstBatch == 0 {
				firstBatch = time.Since(t0)
			}
			if caughtUp && !began.After(deadline) && l.healthy(ctx, addr) {
				reached = st.Positions
				break
			}
			if time.Since(lastReport) >= time.Second {
				lastReport = time.Now()
				opts.Progress(Progress{Phase: "reprocessing", Done: span, Total: total, Elapsed: time.Since(t0)})
			}
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("webserver-stream's view did not catch up within %s (last read: %v)", opts.Timeout, err))
		}
		select {
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	res.Reprocess = time.Since(t0)
	res.Events = consumed()
	if res.Events == 0 {
		res.Events = positionSpan(reached, firsts)
	}
	res.rates(firstBatch)
	opts.Progress(Progress{Phase: "reprocessing", Done: res.Events, Total: total, Elapsed: res.Reprocess})

	opts.Progress(Progress{Phase: "verifying", Detail: "per-movie checksums of the view before and after"})
	if err := l.waitHealthy(ctx, names, 30*time.Second); err != nil {
		return fail(err)
	}
	after, err := readViewState(ctx, db)
	if err != nil {
		return fail(err)
	}
	expected, changed, err := foldView(ctx, k, l.Codec, before.Movies, before.Positions, after.Positions)
	if err != nil {
		return fail(err)
	}
	for _, topic := range topics {
		if !aheadOf(before.Positions[topic], after.Positions[topic]) {
			res.LogMoved = true
		}
	}
	res.Table = viewTable(before.Movies, expected, after.Movies, changed)
	res.Total = time.Since(started)
	return l.finish(ctx, res, a, opts)
}

// positionSpan is how far positions went from each partition's first
// offset (offsets, not records: compaction leaves gaps).
func positionSpan(pos, firsts map[string]map[int]int64) int64 {
	var n int64
	for topic, ps := range pos {
		for p, off := range ps {
			if first, ok := firsts[topic][p]; ok && off > first {
				n += off - first
			}
		}
	}
	return n
}

func viewText(m map[int64]ViewMovie) rowText {
	return func(id int64) (string, bool) {
		v, ok := m[id]
		switch {
		case !ok || (!v.Listed && !v.Rated):
			return "absent", false
		case !v.Listed:
			return fmt.Sprintf("(not in the movies table) count=%d sum_tenths=%d", v.Count, v.SumTenths), true
		}
		return fmt.Sprintf("%q (%d) count=%d sum_tenths=%d", v.Title, v.ReleaseYear, v.Count, v.SumTenths), true
	}
}

func viewTable(before, expected, after map[int64]ViewMovie, changed map[int64]bool) ChecksumTable {
	ids := map[int64]bool{}
	for _, m := range []map[int64]ViewMovie{before, expected, after} {
		for id, v := range m {
			if v.Listed || v.Rated {
				ids[id] = true
			}
		}
	}
	list := make([]int64, 0, len(ids))
	for id := range ids {
		list = append(list, id)
	}
	exp := viewText(expected)
	return checksumTable(list, viewText(before), exp, viewText(after), func(id int64) string {
		if !changed[id] {
			return ""
		}
		b, _ := viewText(before)(id)
		e, _ := exp(id)
		if b == e {
			return ""
		}
		return "updated by the log"
	})
}
