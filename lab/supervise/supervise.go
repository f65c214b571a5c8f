// Package supervise is the lab's supervisor process: what `lab up` starts,
// detached, as lab-supervisor (lab/cmd/lab-supervisor), or as `lab
// supervise` when there is no up-to-date lab-supervisor beside lab. It runs
// the supervisor with the fault injector and the spawn API, so both
// binaries run the same supervisor.
package supervise

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"syscall"

	"github.com/ratingslab/lab/lab/faults"
	"github.com/ratingslab/lab/lab/idlegc"
	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/lab/supervisor"
)

// Spec is what `lab up` hands the detached supervisor (--spec, as JSON).
type Spec struct {
	Options parts.Options      `json:"options"`
	Extras  []supervisor.Extra `json:"extras"`
}

// Config is one supervisor process's command line.
type Config struct {
	Dir        layout.Dir
	Ports      layout.Ports
	Spec       string // JSON of Spec
	HandoverFD int    // the pipe from `lab up` (0: none)
	// LabExe is the lab binary: replay forks run `lab ...`, and the parts
	// run from lab-part beside it when that is up to date
	// (supervisor.PartBinary), else as `lab serve`.
	LabExe string
}

// Run runs the supervisor until ctx ends or the lab is stopped; it logs to
// logs (the supervisor's log file).
func Run(ctx context.Context, c Config, logs io.Writer) error {
	var spec Spec
	if err := json.Unmarshal([]byte(c.Spec), &spec); err != nil {
		return fmt.Errorf("--spec: %w", err)
	}
	h := slog.NewTextHandler(logs, nil)
	log := slog.New(h).With("part", "supervisor")
	partExe := supervisor.PartBinary(c.LabExe)
	if partExe != "" {
		log.Info("parts run from the parts-only binary", "path", partExe)
	} else {
		log.Info("parts run as 'lab serve': no up-to-date "+supervisor.PartBinaryName+" beside lab ('make build' builds both)", "lab", c.LabExe)
	}
	cfg := supervisor.Config{Dir: c.Dir, Ports: c.Ports, Options: spec.Options, Exe: c.LabExe, PartExe: partExe, Extras: spec.Extras}
	if c.HandoverFD > 0 {
		// Only this process reads the pipe: the parts must not hold it.
		syscall.CloseOnExec(c.HandoverFD)
		f := os.NewFile(uintptr(c.HandoverFD), "handover pipe from lab up")
		defer f.Close()
		cfg.Handover = f
	}
	// The edge proxies hand every chunk between goroutines: with
	// every CPU, each handover woke an idle thread (parts.SharedProcs).
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(parts.SharedProcs())
	}
	// As its parts: a smaller heap goal only while the lab is idle.
	defer idlegc.Start()()
	s, err := supervisor.New(cfg, log)
	if err != nil {
		return err
	}
	// What the supervisor serves beyond its parts: the fault injector's API
	// (and its heal-on-shutdown), and the spawn API that starts replay
	// forks at runtime.
	faults.Install(s, slog.New(h).With("part", "faults"))
	s.EnableSpawn()
	// Run writes lab.json as soon as its control API listens and removes it
	// when everything is stopped.
	return s.Run(ctx, func() { log.Info("all parts started") })
}
