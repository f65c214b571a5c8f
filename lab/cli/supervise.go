package cli

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/ratingslab/lab/lab/supervise"
)

// newSuperviseCmd is the detached supervisor process `lab up` starts when
// there is no up-to-date lab-supervisor beside lab (else lab-supervisor, the
// same supervisor in a smaller binary). It is hidden: users run `lab up`.
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
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			return supervise.Run(cmd.Context(), supervise.Config{Dir: g.dir(), Ports: g.ports(), Spec: specJSON, HandoverFD: handoverFD,
				LabExe: exe}, cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&specJSON, "spec", "{}", "supervisor spec as JSON")
	cmd.Flags().IntVar(&handoverFD, "handover-fd", 0, "`fd` of the pipe from 'lab up': EOF before 'lab up' hands the lab over stops it (0: none)")
	return cmd
}
