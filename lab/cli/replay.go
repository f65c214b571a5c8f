package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ratingslab/lab/lab/load"
	"github.com/ratingslab/lab/lab/replay"
	"github.com/ratingslab/lab/lab/supervisor"
	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/model"
)

func newReplayCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Use the ratings log as a recording: rewind groups, rebuild state, re-drive traffic, fork projections",
		Long: `The log variant's ratings topic is a recording of every rating accepted.
These commands act on the running lab; each is safe by default.

  lab replay offsets   rewind/advance a stopped consumer group (dry run unless --execute)
  lab replay rebuild   wipe a stream part's state, reprocess the log, prove the result equal
  lab replay traffic   re-drive a webserver with the ratings of a time window
  lab replay fork      run a new projection of the log beside the live one

'lab log export' and 'lab log import' copy topic ranges to and from files.
docs/replay.md has the safety contract, the request ids of replayed traffic
and what a fork is.`,
	}
	cmd.AddCommand(newReplayOffsetsCmd(g), newReplayRebuildCmd(g), newReplayTrafficCmd(g), newReplayForkCmd(g), newReplayMirrorCmd(g))
	return cmd
}

// openLab connects to the running lab in g's directory.
func openLab(ctx context.Context, g *globals) (*replay.Lab, error) {
	return replay.Open(ctx, g.dir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// --- offsets

type offsetsFlags struct {
	group, topic         string
	earliest, latest     bool
	datetime, byDuration string
	shiftBy, toOffset    int64
	execute, asJSON      bool
}

func newReplayOffsetsCmd(g *globals) *cobra.Command {
	var f offsetsFlags
	cmd := &cobra.Command{
		Use:   "offsets --group G [--topic T] (--to-earliest | --to-latest | --to-datetime T | --by-duration D | --shift-by N | --to-offset N) [--execute]",
		Short: "Reset a consumer group's offsets: dry run by default, refused while the group has members",
		Long: `Moves a consumer group's committed offsets, like kafka-consumer-groups
--reset-offsets. Without --execute nothing changes: it prints, per partition,
the current and new offset and the lag before and after. --execute commits
the new offsets and reads them back. It is refused while the group has active
members (their commits would overwrite it), naming them.

Offsets outside the log are clamped to its start or end. Without --topic it
resets every topic the group has committed offsets for.

Note: ratings-stream in its default effectively-once mode resumes from the
offsets stored with its state in its own database, not from the group; its
group offsets only tell tools where it is. To reprocess, use 'lab replay
rebuild ratings-stream'. In transactional mode the group offsets are
committed with the state, and it resumes from its changelog's position.
Forks' groups (fork-NAME) are their mirrors' positions.`,
		Example: `  lab replay offsets --group ratings-stream --to-earliest
  lab replay offsets --group fork-a --topic ratings --to-datetime 2026-01-02T15:00:00Z --execute
  lab replay offsets --group fork-a --shift-by -500 --execute
  lab replay offsets --group fork-a --by-duration 30m --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runOffsets(cmd, g, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.group, "group", "", "consumer `group` (required)")
	fl.StringVar(&f.topic, "topic", "", "only this `topic` (default: every topic the group has offsets for)")
	fl.BoolVar(&f.earliest, "to-earliest", false, "to the start of the log")
	fl.BoolVar(&f.latest, "to-latest", false, "to the end of the log (skip everything)")
	fl.StringVar(&f.datetime, "to-datetime", "", "to the first record at or after `time` (RFC 3339, local 2006-01-02 15:04:05, or -10m)")
	fl.StringVar(&f.byDuration, "by-duration", "", "to the first record at or after now minus `duration` (e.g. 30m)")
	fl.Int64Var(&f.shiftBy, "shift-by", 0, "by `n` records from the current offset (negative rewinds)")
	fl.Int64Var(&f.toOffset, "to-offset", -1, "to `offset` on every partition")
	fl.BoolVar(&f.execute, "execute", false, "apply the reset (default: dry run)")
	fl.BoolVar(&f.asJSON, "json", false, "print the plan as JSON")
	return cmd
}

func (f offsetsFlags) strategy(cmd *cobra.Command, now time.Time) (replay.Strategy, error) {
	var chosen []replay.Strategy
	if f.earliest {
		chosen = append(chosen, replay.Strategy{Kind: replay.ToEarliest})
	}
	if f.latest {
		chosen = append(chosen, replay.Strategy{Kind: replay.ToLatest})
	}
	if cmd.Flags().Changed("to-datetime") {
		t, err := replay.ParseTime(f.datetime, now)
		if err != nil {
			return replay.Strategy{}, fmt.Errorf("--to-datetime %w", err)
		}
		chosen = append(chosen, replay.Strategy{Kind: replay.ToDatetime, Time: t})
	}
	if cmd.Flags().Changed("by-duration") {
		d, err := time.ParseDuration(f.byDuration)
		if err != nil {
			return replay.Strategy{}, fmt.Errorf("--by-duration %q: want a duration such as 30m or 2h", f.byDuration)
		}
		chosen = append(chosen, replay.Strategy{Kind: replay.ByDuration, Duration: d})
	}
	if cmd.Flags().Changed("shift-by") {
		chosen = append(chosen, replay.Strategy{Kind: replay.ShiftBy, Shift: f.shiftBy})
	}
	if cmd.Flags().Changed("to-offset") {
		chosen = append(chosen, replay.Strategy{Kind: replay.ToOffset, Offset: f.toOffset})
	}
	switch len(chosen) {
	case 0:
		return replay.Strategy{}, errors.New("choose where to move the offsets: --to-earliest, --to-latest, --to-datetime, --by-duration, --shift-by or --to-offset")
	case 1:
		return chosen[0], chosen[0].Validate()
	}
	return replay.Strategy{}, errors.New("choose only one of --to-earliest, --to-latest, --to-datetime, --by-duration, --shift-by, --to-offset")
}

func runOffsets(cmd *cobra.Command, g *globals, f offsetsFlags) error {
	ctx := cmd.Context()
	if f.group == "" {
		return errors.New("--group: a consumer group is required")
	}
	now := time.Now()
	strategy, err := f.strategy(cmd, now)
	if err != nil {
		return err
	}
	l, err := openLab(ctx, g)
	if err != nil {
		return err
	}
	defer l.Close()
	plan, err := replay.PlanReset(ctx, l.Kafka, replay.ResetRequest{Group: f.group, Topic: f.topic, Strategy: strategy, Now: now})
	if err != nil {
		return err
	}
	var execErr error
	if f.execute {
		execErr = replay.ExecuteReset(ctx, l.Kafka, plan)
	}
	if f.asJSON {
		if err := printJSON(g.stdout, plan); err != nil {
			return err
		}
		return execErr
	}
	var active *replay.ActiveGroupError
	if errors.As(execErr, &active) {
		return execErr // the refusal names the members; the plan was not applied
	}
	printPlan(g.stdout, plan)
	if note := groupNote(ctx, l, f.group); note != "" {
		fmt.Fprintln(g.stdout, note)
	}
	return execErr
}

func printPlan(w io.Writer, plan *replay.ResetPlan) {
	mode := "DRY RUN: nothing changed; add --execute to apply"
	if plan.Executed {
		mode = "EXECUTED: offsets committed and read back"
	}
	fmt.Fprintf(w, "Group %s (%s, %d active member(s)), %s — %s\n", plan.Group, plan.State, len(plan.Members), plan.Strategy, mode)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCURRENT\tNEW\tLOG-START\tLOG-END\tLAG-NOW\tLAG-AFTER\t")
	for _, p := range plan.Partitions {
		cur, lag := "-", "-"
		if p.Current >= 0 {
			cur, lag = fmt.Sprint(p.Current), fmt.Sprint(p.LagNow)
		}
		note := ""
		if p.Clamped {
			note = "(clamped to the log)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%d\t%s\t%d\t%s\n", p.Topic, p.Partition, cur, p.New, p.LogStart, p.LogEnd, lag, p.LagAfter, note)
	}
	tw.Flush()
	if len(plan.Members) > 0 && !plan.Executed {
		fmt.Fprintf(w, "The group has active members; --execute will be refused until they stop:\n")
		for _, m := range plan.Members {
			fmt.Fprintf(w, "  member %s\n", m)
		}
	}
}

// groupNote explains what a group's offsets mean for the lab's own groups.
func groupNote(ctx context.Context, l *replay.Lab, group string) string {
	if group != replay.PartRatingsStream {
		return ""
	}
	if o, err := l.Options(ctx); err == nil && o.Delivery == "at-least-once" {
		return "Note: ratings-stream runs at-least-once: it resumes from these group offsets, so a rewind counts those ratings again (the duplicates this mode exists to show)."
	}
	if o, err := l.Options(ctx); err == nil && o.Delivery == "transactional" {
		return "Note: ratings-stream (transactional) commits these offsets in the same Kafka transaction as its state, but resumes from the position in its changelog topic (" + model.TopicRatingsChangelog + "): a rewind here is answered by skipping what the state already includes, never by counting it again."
	}
	return "Note: ratings-stream (effectively-once) resumes from the offsets stored with its state in its database, not from these: the group offsets tell tools where it is. To reprocess, run 'lab replay rebuild ratings-stream'."
}

// --- rebuild

func newReplayRebuildCmd(g *globals) *cobra.Command {
	var opts replay.RebuildOptions
	var asJSON, quiet bool
	cmd := &cobra.Command{
		Use:   "rebuild ratings-stream|webserver-stream",
		Short: "Stop a stream part, wipe its state, reprocess the log from the beginning, prove the result equal",
		Long: `Rebuilds a part's state from the log and proves it equals the state before:

  1. stops the part (every replica),
  2. reads its state (ratings-stream: count and sum per movie and the offsets
     of ratings they include; webserver-stream: its view and positions),
  3. rewinds it: ratings-stream's group to the beginning of ratings, and its
     database moved aside (<data>/<part>.before-rebuild); webserver-stream's
     view database moved aside (it keeps its positions in it; its record of
     request ids stays),
  4. starts it and waits until it has reprocessed the log up to where it was,
  5. compares per-movie checksums of the state before and after, at the same
     log position: if the log moved meanwhile (lag when it was stopped, or new
     ratings during the rebuild), what it added is folded into the state before
     with the documented rules and shown as the delta.

It prints the checksum table, the duration and events/s; the part is back in
service afterwards. The old state is deleted once proven equal (--keep-backup
keeps it). On any failure after step 3 — a movie differs, --timeout runs out,
the part is not healthy, Ctrl-C — the state from before is put back (and the
group's offsets), the part restarted, the differences printed, and the exit
status is non-zero: a rebuild never leaves the part stopped or serving a
state it could not prove.`,
		Example: `  lab replay rebuild ratings-stream
  lab replay rebuild webserver-stream --compare-raw`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{replay.PartRatingsStream, replay.PartWebserverStream},
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] != replay.PartRatingsStream && args[0] != replay.PartWebserverStream {
				return fmt.Errorf("part %q: rebuild knows %s and %s", args[0], replay.PartRatingsStream, replay.PartWebserverStream)
			}
			l, err := openLab(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer l.Close()
			if !quiet {
				opts.Progress = rebuildProgress(g.stderr, args[0])
			}
			res, err := l.Rebuild(cmd.Context(), args[0], opts)
			if res != nil && res.Table.Movies > 0 || res != nil && res.Events > 0 {
				if asJSON {
					if jerr := printJSON(g.stdout, res); jerr != nil {
						return jerr
					}
				} else {
					printRebuild(g.stdout, res)
				}
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&opts.Timeout, "timeout", 10*time.Minute, "how long reprocessing may take")
	fl.BoolVar(&opts.KeepBackup, "keep-backup", false, "keep the state from before (moved aside) even when the rebuilt one is equal")
	fl.BoolVar(&opts.CompareRaw, "compare-raw", false, "also time a bare kafka-go consumer on the same topics, while the part is stopped (the benchmark's reference)")
	fl.BoolVar(&asJSON, "json", false, "print the result as JSON")
	fl.BoolVar(&quiet, "quiet", false, "no progress on stderr")
	return cmd
}

func rebuildProgress(w io.Writer, part string) func(replay.Progress) {
	return func(p replay.Progress) {
		switch {
		case p.Phase == "reprocessing" && p.Detail == "" && p.Total > 0:
			fmt.Fprintf(w, "rebuild %s: reprocessed %d of %d (%.0f%%) in %.1fs\n", part, p.Done, p.Total, 100*float64(p.Done)/float64(p.Total), p.Elapsed.Seconds())
		case p.Detail != "":
			fmt.Fprintf(w, "rebuild %s: %s %s\n", part, p.Phase, p.Detail)
		}
	}
}

func printRebuild(w io.Writer, res *replay.RebuildResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MOVIE\tSTATE AFTER\tLOG DELTA\tSUM BEFORE\tSUM EXPECTED\tSUM AFTER\tMATCH\t")
	var diffs []replay.ChecksumRow
	for _, r := range res.Table.Rows {
		match := "ok"
		if !r.Match {
			match = "DIFFERS"
			diffs = append(diffs, r)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.MovieID, clip(r.After, 64), r.Delta, r.BeforeChecksum, r.ExpectedChecksum, r.AfterChecksum, match)
	}
	tw.Flush()
	for _, r := range diffs {
		delta := ""
		if r.Delta != "" {
			delta = " with the log's " + r.Delta
		}
		fmt.Fprintf(w, "movie %d differs: before %s%s, after %s\n", r.MovieID, r.Before, delta, r.After)
	}
	fmt.Fprintf(w, "\nRebuilt %s (%s) from %d event(s) of %s in %.2fs: %.0f events/s",
		res.Part, strings.Join(res.Instances, ", "), res.Events, strings.Join(res.Topics, " + "), res.Reprocess.Seconds(), res.EventsPerSec)
	if res.ProcessingPerSec > 0 {
		fmt.Fprintf(w, " (%.0f events/s after %.2fs of start-up)", res.ProcessingPerSec, (res.Reprocess - res.Processing).Seconds())
	}
	fmt.Fprintf(w, "; whole rebuild %.2fs.\n", res.Total.Seconds())
	if res.Raw != nil {
		fmt.Fprintf(w, "Raw kafka-go consume of %s, same run: %d record(s) in %.2fs = %.0f events/s.\n",
			strings.Join(res.Raw.Topics, " + "), res.Raw.Records, res.Raw.Duration.Seconds(), res.Raw.EventsPerSec)
	}
	if res.LogMoved {
		fmt.Fprintln(w, "The log moved past the state before (lag at the stop, or new records during the rebuild); LOG DELTA is what it added, folded into the state before.")
	}
	if res.Table.OK() {
		fmt.Fprintf(w, "State before = state after: %d movie(s), checksum %s. %s is back in service.\n", res.Table.Movies, res.Table.AfterChecksum, res.Part)
	} else {
		fmt.Fprintf(w, "DIFFERENT: %d of %d movie(s) do not match (checksum expected %s, after %s).\n", res.Table.Mismatches, res.Table.Movies, res.Table.ExpectedChecksum, res.Table.AfterChecksum)
	}
	if len(res.Backup) > 0 {
		fmt.Fprintf(w, "The state from before is kept in %s.\n", strings.Join(res.Backup, ", "))
	}
}

// --- traffic

type trafficFlags struct {
	from, to, target, url, speed, runID string
	timeout                             time.Duration
	concurrency                         int
	asJSON, quiet                       bool
}

func newReplayTrafficCmd(g *globals) *cobra.Command {
	var f trafficFlags
	cmd := &cobra.Command{
		Use:   "traffic --from T1 --to T2 --target rpc|stream [--speed 1x|10x|max]",
		Short: "Re-drive a webserver with the ratings recorded in the log between two times",
		Long: `Reads the ratings recorded in the ratings topic between --from and --to (by
record timestamp) and sends each as a new POST /api/ratings to a webserver:
at the original pace (the gaps between the events' event_time), a multiple of
it (--speed 10x), or as fast as possible (--speed max).

Only what ratings-stream counts is replayed: records it would dead-letter are
skipped, and a request id that appears twice (a re-produced record) is sent
once. Each replayed rating gets a new request id, RUN-ID:PARTITION.OFFSET
(the record it replays), so the target applies it as a new rating.

Every request and its outcome go into a ledger (<dir>/ledgers/RUN-ID.jsonl)
in the format of 'lab load', so 'lab audit --ledger' checks the target after.`,
		Example: `  lab replay traffic --from -10m --to now --target rpc --speed max
  lab replay traffic --from 2026-01-02T15:00:00Z --to 2026-01-02T15:05:00Z --target rpc --speed 10x`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runTraffic(cmd.Context(), g, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.from, "from", "", "start of the window (RFC 3339, local time, or -10m)")
	fl.StringVar(&f.to, "to", "now", "end of the window, exclusive")
	fl.StringVar(&f.target, "target", "", "webserver to drive: rpc or stream")
	fl.StringVar(&f.url, "url", "", "base `URL` of the target (default: the lab's webserver of --target)")
	fl.StringVar(&f.speed, "speed", "1x", "1x (original pace), 10x, 0.5x, ... or max")
	fl.StringVar(&f.runID, "run-id", "", "name of the run (default replay-<UTC time>-<random>); request ids derive from it")
	fl.DurationVar(&f.timeout, "timeout", 5*time.Second, "timeout of one request")
	fl.IntVar(&f.concurrency, "concurrency", 0, "most requests in flight (default 256, or 32 with --speed max)")
	fl.BoolVar(&f.asJSON, "json", false, "print the result as JSON")
	fl.BoolVar(&f.quiet, "quiet", false, "no progress on stderr")
	return cmd
}

func runTraffic(ctx context.Context, g *globals, f trafficFlags) error {
	now := time.Now()
	if f.from == "" {
		return errors.New("--from: the start of the window is required (e.g. -10m or 2026-01-02T15:00:00Z)")
	}
	from, err := replay.ParseTime(f.from, now)
	if err != nil {
		return fmt.Errorf("--from %w", err)
	}
	to, err := replay.ParseTime(f.to, now)
	if err != nil {
		return fmt.Errorf("--to %w", err)
	}
	speed, err := replay.ParseSpeed(f.speed)
	if err != nil {
		return err
	}
	if f.runID == "" {
		f.runID = load.NewRunID("replay", now)
	}
	l, err := openLab(ctx, g)
	if err != nil {
		return err
	}
	defer l.Close()
	url := f.url
	switch f.target {
	case "rpc":
		if url == "" {
			url = "http://" + l.Ports.WebserverRPC()
		}
	case "stream":
		if url == "" {
			url = "http://" + l.Ports.WebserverStream()
		}
	case "":
		return errors.New("--target: rpc or stream is required")
	default:
		if url == "" {
			return fmt.Errorf("--target %q: want rpc or stream (or give --url for another variant)", f.target)
		}
	}
	spec := replay.TrafficSpec{Codec: l.Codec, From: from, To: to, Variant: f.target, URL: url, Speed: speed, RunID: f.runID,
		LedgerDir: g.dir().Ledgers(), Timeout: f.timeout, Concurrency: f.concurrency}
	if !f.quiet {
		spec.Progress = func(p replay.TrafficProgress) {
			fmt.Fprintf(g.stderr, "replay %s: sent %d of %d, acknowledged %d, failed %d, in flight %d, %.1fs\n",
				f.target, p.Sent, p.Total, p.Acknowledged, p.Failed, p.InFlight, p.Elapsed.Seconds())
		}
	}
	res, err := replay.ReplayTraffic(ctx, l.Kafka, spec)
	if res == nil {
		return err
	}
	if f.asJSON {
		if jerr := printJSON(g.stdout, res); jerr != nil {
			return jerr
		}
		return err
	}
	fmt.Fprintf(g.stdout, "Replayed %d rating(s) of %s [%s, %s) into %s (%s) at %s in %.2fs (recorded span %.2fs).\n",
		res.Ratings, model.TopicRatings, from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano),
		res.Variant, res.URL, res.Speed, res.Duration.Seconds(), res.Original.Seconds())
	fmt.Fprintf(g.stdout, "Outcomes: %d acknowledged, %d rejected, %d failed, %d ambiguous.\n",
		res.Outcomes["acknowledged"], res.Outcomes["rejected"], res.Outcomes["failed"], res.Outcomes["ambiguous"])
	for reason, n := range res.Skipped {
		fmt.Fprintf(g.stdout, "Skipped %d record(s): %s.\n", n, reason)
	}
	if res.MaxLate > 100*time.Millisecond {
		fmt.Fprintf(g.stdout, "Fell behind the original schedule by up to %s (raise --concurrency, or the target is slower than the recording).\n", res.MaxLate.Round(time.Millisecond))
	}
	fmt.Fprintf(g.stdout, "Ledger: %s (request ids %s:PARTITION.OFFSET). Check the target with: lab audit --ledger %s\n", res.Ledger, res.RunID, res.Ledger)
	return err
}

// --- fork

type forkFlags struct {
	name, from           string
	wait                 time.Duration
	noWait, list         bool
	stop, remove, asJSON bool
}

func newReplayForkCmd(g *globals) *cobra.Command {
	var f forkFlags
	cmd := &cobra.Command{
		Use:   "fork --name N [--from T] | --list | --name N --stop | --name N --remove",
		Short: "Start a new projection of the log (its own group, broker, processor and view) beside the live one",
		Long: `A fork is the log variant run a second time, from a point in history, while
the live one keeps running:

  mirror            a consumer group on the lab's broker (fork-NAME) copies ratings
                    from --from (default: the beginning) and the whole movies table
                    into the fork's own broker, through its own edge proxy
  broker            the fork's own embedded broker (lab serve broker)
  ratings-stream    the processor's code, unchanged, on the fork's broker
  webserver-stream  the view's code, unchanged: the fork's public API and page

Nothing the fork writes reaches the live topics. Its view serves the same API
as the webservers on its own port. The processes are supervised: 'lab status'
lists them, 'lab down' stops them; run the same command again (after 'lab up')
to resume a fork from where it was. At most 3 forks run at once.

By default the command waits (--wait) until the fork has caught up with the
live log and prints progress.`,
		Example: `  lab replay fork --name v2
  lab replay fork --name lastweek --from 2026-01-02T00:00:00Z
  lab replay fork --list
  lab replay fork --name v2 --stop
  lab replay fork --name v2 --remove`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runFork(cmd, g, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.name, "name", "", "fork `name` (1-24 of a-z 0-9 -)")
	fl.StringVar(&f.from, "from", "", "where in ratings the fork starts (RFC 3339, local time, or -1h; default: the beginning)")
	fl.DurationVar(&f.wait, "wait", 5*time.Minute, "how long to wait for the fork to catch up")
	fl.BoolVar(&f.noWait, "no-wait", false, "return once the processes are started")
	fl.BoolVar(&f.list, "list", false, "list the forks")
	fl.BoolVar(&f.stop, "stop", false, "stop the fork's processes (its data stays; run without --stop to resume)")
	fl.BoolVar(&f.remove, "remove", false, "stop the fork and delete its data and consumer group")
	fl.BoolVar(&f.asJSON, "json", false, "with --list: print JSON")
	return cmd
}

func runFork(cmd *cobra.Command, g *globals, f forkFlags) error {
	ctx := cmd.Context()
	modes := 0
	for _, on := range []bool{f.list, f.stop, f.remove} {
		if on {
			modes++
		}
	}
	if modes > 1 {
		return errors.New("choose one of --list, --stop and --remove")
	}
	if !f.list && f.name == "" {
		return errors.New("--name: a fork name is required")
	}
	l, err := openLab(ctx, g)
	if err != nil {
		return err
	}
	defer l.Close()
	switch {
	case f.list:
		forks, err := l.ForkStatuses(ctx)
		if err != nil {
			return err
		}
		if f.asJSON {
			return printJSON(g.stdout, forks)
		}
		printForks(g.stdout, forks)
		return nil
	case f.stop:
		if err := l.StopFork(ctx, f.name); err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "Fork %s stopped; its data and group stay. Resume it with: lab replay fork --name %s\n", f.name, f.name)
		return nil
	case f.remove:
		if err := l.RemoveFork(ctx, f.name); err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "Fork %s removed: processes, data and group fork-%s.\n", f.name, f.name)
		return nil
	}
	spec := replay.ForkSpec{Name: f.name, Wait: f.wait}
	if f.noWait {
		spec.Wait = 0
	}
	if f.from != "" {
		if spec.From, err = replay.ParseTime(f.from, time.Now()); err != nil {
			return fmt.Errorf("--from %w", err)
		}
	}
	spec.Progress = func(p replay.ForkProgress) {
		fmt.Fprintf(g.stderr, "fork %s: copied %d of %d ratings, counted %d of %d, view caught up: %v (%.1fs)\n",
			f.name, p.Mirrored, p.MirrorTarget, p.Processed, p.ProcessTarget, p.ViewCaughtUp, p.Elapsed.Seconds())
	}
	fk, err := l.StartFork(ctx, spec)
	if err != nil {
		return err
	}
	procs := fk.Processes(l)
	from := "the beginning of ratings"
	if !fk.From.IsZero() {
		from = fk.From.UTC().Format(time.RFC3339Nano)
	}
	state := "caught up with the live log"
	if spec.Wait == 0 {
		state = "started"
	}
	fmt.Fprintf(g.stdout, "Fork %s (from %s) %s.\n", fk.Name, from, state)
	fmt.Fprintf(g.stdout, "  view (public API and page)  %s\n", fk.ViewURL(l))
	fmt.Fprintf(g.stdout, "  processor state             http://%s/state\n", procs[2].Addr)
	fmt.Fprintf(g.stdout, "  broker                      %s\n", procs[0].Addr)
	fmt.Fprintf(g.stdout, "  group on the lab's broker   %s\n", fk.Group())
	fmt.Fprintf(g.stdout, "Stop it: lab replay fork --name %s --stop   Remove it: lab replay fork --name %s --remove\n", fk.Name, fk.Name)
	return nil
}

func printForks(w io.Writer, forks []replay.ForkStatus) {
	if len(forks) == 0 {
		fmt.Fprintln(w, "No forks. Start one with: lab replay fork --name NAME [--from TIME]")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FORK\tFROM\tVIEW\tPROCESSES\tGROUP\t")
	for _, f := range forks {
		from := "beginning"
		if !f.From.IsZero() {
			from = f.From.UTC().Format(time.RFC3339)
		}
		var health []string
		for _, p := range f.Processes {
			health = append(health, strings.TrimPrefix(p.Name, "fork-"+f.Name+"-")+":"+string(p.Health))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", f.Name, from, f.View, strings.Join(health, " "), f.Group())
	}
	tw.Flush()
}

// forkStatus is `lab status`'s section on forks.
func forkStatus(g *globals, c *supervisor.Client, r *statusReport) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	spawned, err := c.Spawned(ctx)
	if err != nil || len(spawned) == 0 {
		return nil
	}
	r.Extras["spawned"] = spawned
	lines := []string{"", "Replay forks (lab replay fork --list):"}
	for _, s := range spawned {
		pid := "-"
		if s.PID > 0 {
			pid = fmt.Sprint(s.PID)
		}
		lines = append(lines, fmt.Sprintf("  %-34s pid %-7s %-21s %s", s.Name, pid, s.Addr, s.Health))
	}
	return lines
}

// --- mirror (a fork's process)

func newReplayMirrorCmd(g *globals) *cobra.Command {
	var cfg replay.MirrorConfig
	var source kafkaio.Config
	cmd := &cobra.Command{
		Use:    "mirror --listen ADDR --group G --to FORK-BROKER --brokers LAB-BROKER",
		Short:  "Copy ratings and movies from the lab's broker into a fork's broker (a fork's process)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.Source = source
			cfg.Log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)).With("part", "mirror")
			return replay.RunMirror(cmd.Context(), cfg)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&cfg.Group, "group", "", "consumer `group` on the lab's broker")
	fl.StringVar(&cfg.Target, "to", "", "the fork's broker `address`")
	fl.DurationVar(&cfg.TopicWait, "topic-wait", 30*time.Second, "how long to wait for the topics at start")
	gofs := flag.NewFlagSet("mirror", flag.ContinueOnError)
	source.RegisterFlags(gofs)
	cfg.Listen.Flags(gofs, "127.0.0.1:0", "GET /state")
	fl.AddGoFlagSet(gofs)
	return cmd
}

// clip shortens s for a table cell.
func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
