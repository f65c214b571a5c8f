// Command lab-supervisor is `lab supervise` alone: the lab's supervisor (its
// parts' processes, the Toxiproxy edge proxies, the fault injector) in a
// binary without the CLI, chaos runner, load engine, reports and their
// fonts. `lab up` starts it when `make build` put an up-to-date one beside
// `lab`: every Go package linked into a binary runs its init at start and the
// pages it touches stay resident, so the supervisor keeps ~8 MiB less
// resident than as `lab supervise`. It is a binary of its own, not a command
// of lab-part, so the parts do not run Toxiproxy's and the fault injector's
// inits (docs/benchmarks.md, "Idle memory after a minute (wave 5, idlemem)").
//
//	lab-supervisor --lab LAB --dir DIR --port-base N [--handover-fd FD] [--spec JSON]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/supervise"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "lab-supervisor:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("lab-supervisor", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: lab-supervisor --lab LAB --dir DIR --port-base N [--handover-fd FD] [--spec JSON]   (what 'lab up' starts; run 'lab up')")
		fs.PrintDefaults()
	}
	lab := fs.String("lab", "", "the lab binary (replay forks run it; the parts run from lab-part beside it, else as 'lab serve')")
	dir := fs.String("dir", "", "the lab's state dir")
	base := fs.Int("port-base", 0, "first port of the lab's block of ports")
	fd := fs.Int("handover-fd", 0, "fd of the pipe from 'lab up': EOF before 'lab up' hands the lab over stops it (0: none)")
	spec := fs.String("spec", "{}", "supervisor spec as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *lab == "" || *dir == "" || fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("--lab and --dir are required, and no arguments (got %q)", args)
	}
	ports := layout.Ports{Base: *base}
	if err := ports.Validate(); err != nil {
		return err
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return fmt.Errorf("--dir %q: %w", *dir, err)
	}
	return supervise.Run(ctx, supervise.Config{Dir: layout.Dir(abs), Ports: ports, Spec: *spec, HandoverFD: *fd,
		LabExe: *lab}, os.Stderr)
}
