package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ratingslab/lab/lab/replay"
)

func newLogCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "log",
		Short: "Copy a topic range of the lab's broker to a file, or a file into a topic",
		Long: `Topic ranges as JSON lines, one record a line, with its partition, timestamp,
key, value and headers (docs/replay.md has the format):

  lab log export --topic T [--from T1] [--to T2] [--partition P] > file.jsonl
  lab log import file.jsonl --topic T

Exporting the same range twice gives the same file, and a file imported into
a new topic exports again byte for byte (offsets are the topic's own, so they
are not in the file).`,
	}
	cmd.AddCommand(newLogExportCmd(g), newLogImportCmd(g))
	return cmd
}

func newLogExportCmd(g *globals) *cobra.Command {
	var topic, from, to, out string
	var partition int
	var quiet bool
	cmd := &cobra.Command{
		Use:   "export --topic T [--from T1] [--to T2] [--partition P] > file.jsonl",
		Short: "Write a topic range as JSON lines (keys, values, headers, timestamps, partitions)",
		Long: `Writes the records of a topic — all of them, or those with a timestamp in
[--from, --to), of every partition or only --partition — to stdout (or
--out) as JSON lines, partition by partition in offset order. The range ends
where the log ended when the export began: it is a snapshot, not a tail.`,
		Example: `  lab log export --topic ratings > ratings.jsonl
  lab log export --topic ratings --from -10m --partition 3 --out last10m-p3.jsonl
  lab log export --topic ratings-dlq | jq -r '.headers[] | select(.key=="dlq-reason") | .value' | sort | uniq -c`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			now := time.Now()
			spec := replay.ExportSpec{Topic: topic, Partition: partition}
			var err error
			if from != "" {
				if spec.From, err = replay.ParseTime(from, now); err != nil {
					return fmt.Errorf("--from %w", err)
				}
			}
			if to != "" {
				if spec.To, err = replay.ParseTime(to, now); err != nil {
					return fmt.Errorf("--to %w", err)
				}
			}
			if cmd.Flags().Changed("partition") && partition < 0 {
				return fmt.Errorf("--partition %d: must be >= 0", partition)
			}
			l, err := openLab(ctx, g)
			if err != nil {
				return err
			}
			defer l.Close()
			w := g.stdout
			if out != "" && out != "-" {
				f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
				if err != nil {
					return fmt.Errorf("--out: %w", err)
				}
				defer f.Close()
				w = f
			}
			var progress func(int64)
			if !quiet {
				progress = func(n int64) { fmt.Fprintf(g.stderr, "export %s: %d record(s)\n", topic, n) }
			}
			res, err := replay.Export(ctx, l.Kafka, spec, w, progress)
			if err != nil {
				return err
			}
			if !quiet {
				var parts []string
				for _, r := range res.Ranges {
					parts = append(parts, fmt.Sprintf("%d:[%d,%d)=%d", r.Partition, r.From, r.To, r.Records))
				}
				fmt.Fprintf(g.stderr, "exported %d record(s) of %s (partition:[from,to)=records %s)\n", res.Records, topic, strings.Join(parts, " "))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&topic, "topic", "", "`topic` to export (required)")
	fl.StringVar(&from, "from", "", "first record `time` (RFC 3339, local time, or -10m; default: the beginning)")
	fl.StringVar(&to, "to", "", "end `time`, exclusive (default: the end of the log)")
	fl.IntVar(&partition, "partition", -1, "only this `partition` (default: all)")
	fl.StringVar(&out, "out", "", "write to this `file` (must not exist) instead of stdout")
	fl.BoolVar(&quiet, "quiet", false, "no progress on stderr")
	return cmd
}

func newLogImportCmd(g *globals) *cobra.Command {
	var spec replay.ImportSpec
	var configs []string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "import FILE --topic T [--skip-bad] [--append]",
		Short: "Produce a file written by 'lab log export' into a topic, records on their partitions",
		Long: `Produces every line of FILE (as written by 'lab log export'; "-" reads stdin)
into --topic with acks=all: each record on the partition of its line, with its
timestamp, key, value and headers. The whole file is checked first: a bad line
is reported with its line number and nothing is imported, unless --skip-bad.

A topic that does not exist is created (--partitions, default the highest
partition in the file plus one; --config for e.g. cleanup.policy=compact). A
topic that already holds records is refused unless --append. The topic gives
the records new offsets; an import that fails midway may have written part of
the file (it says how much was acknowledged).`,
		Example: `  lab log import ratings.jsonl --topic ratings-copy
  lab log import movies.jsonl --topic movies-copy --config cleanup.policy=compact
  lab log import edited.jsonl --topic ratings --append --skip-bad`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if len(configs) > 0 {
				spec.Configs = map[string]string{}
			}
			for _, c := range configs {
				k, v, ok := strings.Cut(c, "=")
				if !ok || k == "" {
					return fmt.Errorf("--config %q: want name=value, e.g. cleanup.policy=compact", c)
				}
				spec.Configs[k] = v
			}
			name := args[0]
			open := func() (io.ReadCloser, error) { return os.Open(name) }
			if name == "-" {
				// Two passes need the file twice: spool stdin first.
				tmp, err := os.CreateTemp("", "lab-import-*.jsonl")
				if err != nil {
					return err
				}
				defer os.Remove(tmp.Name())
				if _, err := io.Copy(tmp, os.Stdin); err != nil {
					tmp.Close()
					return fmt.Errorf("read stdin: %w", err)
				}
				tmp.Close()
				name = "stdin"
				open = func() (io.ReadCloser, error) { return os.Open(tmp.Name()) }
			} else if _, err := os.Stat(name); err != nil {
				return fmt.Errorf("FILE: %w", err)
			}
			l, err := openLab(ctx, g)
			if err != nil {
				return err
			}
			defer l.Close()
			var progress func(done, total int64)
			if !quiet {
				progress = func(done, total int64) {
					if done == total || done%50000 == 0 {
						fmt.Fprintf(g.stderr, "import %s: %d of %d record(s)\n", spec.Topic, done, total)
					}
				}
			}
			res, err := replay.Import(ctx, l.Kafka, name, open, spec, progress)
			var bad *replay.BadLinesError
			if errors.As(err, &bad) {
				return err
			}
			if res.Records > 0 || err == nil {
				created := ""
				if res.Created {
					created = fmt.Sprintf(" (created with %d partition(s))", res.Partitions)
				}
				fmt.Fprintf(g.stdout, "Imported %d record(s) into %s%s.\n", res.Records, spec.Topic, created)
				if res.SkippedTotal > 0 {
					fmt.Fprintf(g.stdout, "Skipped %d bad line(s) (--skip-bad):\n", res.SkippedTotal)
					for _, l := range res.Skipped {
						fmt.Fprintf(g.stdout, "  %s\n", l.Error())
					}
				}
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&spec.Topic, "topic", "", "`topic` to import into (required)")
	fl.BoolVar(&spec.SkipBad, "skip-bad", false, "import the good lines of a file with bad ones")
	fl.BoolVar(&spec.Append, "append", false, "allow a topic that already holds records")
	fl.IntVar(&spec.Partitions, "partitions", 0, "partitions of a topic the import creates (default: highest in the file + 1)")
	fl.StringArrayVar(&configs, "config", nil, "config of a topic the import creates, `name=value` (repeatable)")
	fl.BoolVar(&quiet, "quiet", false, "no progress on stderr")
	return cmd
}
