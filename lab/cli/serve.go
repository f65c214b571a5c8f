package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ratingslab/lab/lab/parts"
)

func newServeCmd(g *globals) *cobra.Command {
	var b strings.Builder
	for _, p := range parts.All() {
		fmt.Fprintf(&b, "  %-18s %-7s %s\n", p.Name, p.Variant, p.Summary)
	}
	return &cobra.Command{
		Use:         "serve PART [flags]",
		Annotations: map[string]string{annotPorts: portsOwn},
		Short:       "Run one part in the foreground (the supervisor runs each part this way)",
		Long: `Run one part of the lab in the foreground until SIGTERM or Ctrl-C.

'lab up' starts every part like this, as its own OS process, with the flags it
needs; run it yourself to debug a part. 'lab serve PART --help' lists a part's
flags.

Parts:
` + b.String(),
		Example: `  lab serve broker --listen 127.0.0.1:9092 --data /tmp/broker
  lab serve movies-rpc --help`,
		DisableFlagParsing: true,
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return parts.Names(), cobra.ShellCompDirectiveNoFileComp
			}
			return nil, cobra.ShellCompDirectiveDefault
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			args = stripGlobalFlags(args)
			if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
				return cmd.Help()
			}
			return parts.Serve(cmd.Context(), args[0], args[1:], g.stderr)
		},
	}
}

// stripGlobalFlags drops --dir and --port-base (which may precede the part
// name, since flag parsing is left to the part's own flag set).
func stripGlobalFlags(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--dir" || a == "--port-base":
			i++
		case strings.HasPrefix(a, "--dir=") || strings.HasPrefix(a, "--port-base="):
		default:
			out = append(out, a)
		}
	}
	return out
}
