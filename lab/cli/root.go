// Package cli is the `lab` command line: one cobra command per file.
package cli

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/ratingslab/lab/lab/layout"
)

// Version is set at build time (-ldflags "-X .../lab/cli.Version=...").
var Version = "dev"

// globals are the flags every command shares.
type globals struct {
	dirFlag  string
	portBase int
	getenv   func(string) string
	stdout   io.Writer
	stderr   io.Writer
}

func (g *globals) dir() layout.Dir { return layout.Dir(g.dirFlag) }

func (g *globals) ports() layout.Ports { return layout.Ports{Base: g.portBase} }

// Run executes the lab command line.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	root := newRootCmd(getenv, stdout, stderr)
	root.SetArgs(args[1:])
	return root.ExecuteContext(ctx)
}

func newRootCmd(getenv func(string) string, stdout, stderr io.Writer) *cobra.Command {
	g := &globals{getenv: getenv, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "lab",
		Short: "Ratings Lab: RPC vs event log, side by side, under the same load and faults",
		Long: `Ratings Lab runs the movie ratings stack twice — once integrated by synchronous
RPC with circuit breakers, once through a Kafka event log — drives both with the
same load, injects the same faults, and shows how each one cascades and recovers.

Start here:
  lab up        start every part (each its own process) and print the URLs
  lab status    health of every part
  lab down      stop everything

State lives in one directory (--dir, default .lab); ports come from one base
(--port-base, default 7700; the README has the table). Two labs can run side by
side with different --dir and --port-base.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("dir") {
				if v := getenv("LAB_DIR"); v != "" {
					g.dirFlag = v
				}
			}
			if !cmd.Flags().Changed("port-base") {
				if v := getenv("LAB_PORT_BASE"); v != "" {
					n, err := strconv.Atoi(v)
					if err != nil {
						return fmt.Errorf("LAB_PORT_BASE=%q is not a port number", v)
					}
					g.portBase = n
				}
			}
			abs, err := filepath.Abs(g.dirFlag)
			if err != nil {
				return fmt.Errorf("--dir %q: %w", g.dirFlag, err)
			}
			g.dirFlag = abs
			if err := g.ports().Validate(); err != nil {
				return err
			}
			if cmd.Annotations[annotPorts] == portsOwn {
				return nil
			}
			explicit := cmd.Flags().Changed("port-base") || getenv("LAB_PORT_BASE") != ""
			return g.adoptRunningPorts(explicit)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.dirFlag, "dir", ".lab", "state `dir`ectory of the lab (env LAB_DIR)")
	root.PersistentFlags().IntVar(&g.portBase, "port-base", layout.DefaultPortBase, "first `port` of the lab's block of 192 ports (env LAB_PORT_BASE); commands other than 'up' take the running lab's from <dir>/lab.json")
	// Every command of the lab, in one place. A new command family is a
	// newXCmd in its own file and one line here.
	root.AddCommand(
		// the lab's lifecycle
		newUpCmd(g), newDownCmd(g), newStatusCmd(g), newVersionCmd(g),
		// processes the lab starts (hidden)
		newServeCmd(g), newSuperviseCmd(g),
		// data, load, faults and what they showed
		newDataCmd(g), newLoadCmd(g), newChaosCmd(g), newBreakersCmd(g),
		newAuditCmd(g), newReportCmd(g),
		// the ratings log as a recording
		newReplayCmd(g), newLogCmd(g),
		// measurements and the compose stack
		newBenchCmd(g), newComposeCmd(g),
	)
	return root
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the lab's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintln(g.stdout, "lab", Version)
			return nil
		},
	}
}
