// Command lab-part runs one part of the lab: `lab-part serve PART [flags]`
// is `lab serve PART [flags]` in a binary that links the parts and nothing
// else of the lab (no CLI, chaos, load engine, reports, dashboards). Every
// Go package linked into a binary runs its init at start, and the pages it
// touches stay resident in each process, so the supervisor runs its parts
// with this smaller binary when `make build` put it beside `lab`
// (docs/benchmarks.md, "Idle memory (wave 4, rss)").
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ratingslab/lab/lab/parts"
)

func main() {
	if len(os.Args) < 3 || os.Args[1] != "serve" {
		fmt.Fprintln(os.Stderr, "usage: lab-part serve PART [flags]   (what `lab up` runs for each part; `lab serve --help` lists the parts)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := parts.Serve(ctx, os.Args[2], os.Args[3:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "lab-part:", err)
		os.Exit(1)
	}
}
