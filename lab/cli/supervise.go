package cli

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ratingslab/lab/lab/faults"
	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/lab/supervisor"
)

// supervisorSpec is what `lab up` hands the detached supervisor.
type supervisorSpec struct {
	Options parts.Options      `json:"options"`
	Extras  []supervisor.Extra `json:"extras"`
}

// newSuperviseCmd is the detached supervisor process `lab up` starts. It is
// hidden: users run `lab up`.
func newSuperviseCmd(g *globals) *cobra.Command {
	var specJSON string
	var handoverFD int
	cmd := &cobra.Command{
		Use:         "supervise",
		Annotations: map[string]string{annotPorts: portsOwn},
		Short:       "Run the lab's supervisor in the foreground (started by 'lab up')",
		Hidden:      true,
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var spec supervisorSpec
			if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
				return fmt.Errorf("--spec: %w", err)
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			logs := slog.NewTextHandler(cmd.ErrOrStderr(), nil)
			log := slog.New(logs).With("part", "supervisor")
			partExe := supervisor.PartBinary(exe)
			if partExe != "" {
				log.Info("parts run from the parts-only binary", "path", partExe)
			} else {
				log.Info("parts run as 'lab serve': no up-to-date "+supervisor.PartBinaryName+" beside lab ('make build' builds both)", "lab", exe)
			}
			cfg := supervisor.Config{Dir: g.dir(), Ports: g.ports(), Options: spec.Options, Exe: exe, PartExe: partExe, Extras: spec.Extras}
			if handoverFD > 0 {
				// Only this process reads the pipe: the parts must not hold it.
				syscall.CloseOnExec(handoverFD)
				f := os.NewFile(uintptr(handoverFD), "handover pipe from lab up")
				defer f.Close()
				cfg.Handover = f
			}
			// The edge proxies hand every chunk between goroutines: with
			// every CPU, each handover woke an idle thread (parts.SharedProcs).
			if os.Getenv("GOMAXPROCS") == "" {
				runtime.GOMAXPROCS(parts.SharedProcs())
			}
			s, err := supervisor.New(cfg, log)
			if err != nil {
				return err
			}
			// What the supervisor serves beyond its parts: the fault
			// injector's API (and its heal-on-shutdown), and the spawn API
			// that starts replay forks at runtime.
			faults.Install(s, slog.New(logs).With("part", "faults"))
			s.EnableSpawn()
			// Run writes lab.json as soon as its control API listens and
			// removes it when everything is stopped.
			return s.Run(cmd.Context(), func() { log.Info("all parts started") })
		},
	}
	cmd.Flags().StringVar(&specJSON, "spec", "{}", "supervisor spec as JSON")
	cmd.Flags().IntVar(&handoverFD, "handover-fd", 0, "`fd` of the pipe from 'lab up': EOF before 'lab up' hands the lab over stops it (0: none)")
	return cmd
}
