package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ratingslab/lab/experiments"
	"github.com/ratingslab/lab/lab/chaos"
	"github.com/ratingslab/lab/lab/faults"
	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/lab/kv"
	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/lab/report"
	"github.com/ratingslab/lab/lab/supervisor"
	"github.com/ratingslab/lab/services/lib/variantname"
)

func newChaosCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "chaos",
		Short: "Inject faults by hand, or run chaos experiments against both variants at once",
		Long: `Faults act on the running lab: on network edges (Toxiproxy toxics on each
edge's own proxy), on processes (kill, pause, restart — the broker included),
and inside services (error rate, handler latency, slow legacy DB, consumer
throttle, poison records in the log).

  lab chaos list                          every fault, its parameters and targets
  lab chaos inject <fault> --target T     inject one fault; prints its id
  lab chaos status                        active faults
  lab chaos heal <id> | --all             heal
  lab chaos run <experiment>              run an experiment file (experiments/)

Active faults show in 'lab status' and as lab_fault_active{fault,target} on
the supervisor's /metrics. 'lab down' heals everything first. Toxiproxy's own
API is on the lab's toxiproxy port, so toxiproxy-cli works too.`,
	}
	cmd.AddCommand(newChaosListCmd(g), newChaosInjectCmd(g), newChaosHealCmd(g), newChaosStatusCmd(g),
		newChaosRunCmd(g), newChaosValidateCmd(g))
	return cmd
}

// labClients connects to the running lab in g's directory.
func labClients(g *globals) (*supervisor.Client, *faults.Client, supervisor.State, error) {
	st, err := supervisor.ReadState(g.dir())
	if errors.Is(err, supervisor.ErrNoState) {
		return nil, nil, st, fmt.Errorf("the lab in %s is not running; start it with 'lab up'", g.dir())
	}
	if err != nil {
		return nil, nil, st, err
	}
	if st.Current() == supervisor.PhaseStarting {
		return nil, nil, st, fmt.Errorf("the lab in %s is still starting; wait for 'lab up' to finish ('lab status' shows its progress)", g.dir())
	}
	c := supervisor.NewClient(st.Control)
	return c, faults.NewClient(c), st, nil
}

// ---- list

func newChaosListCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every fault with its parameters, defaults and valid targets, and the experiments",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			info := faults.CatalogInfo{Faults: faults.Kinds()}
			note := ""
			if _, fc, _, err := labClients(g); err == nil {
				if ci, err := fc.Catalog(ctx); err == nil {
					info = ci
				}
			}
			if info.Targets.Parts == nil {
				info.Targets = faults.TargetsFor(parts.Options{}, g.ports())
				note = "(targets of a lab started with 'lab up' and no flags; start the lab to see its own)"
			}
			if asJSON {
				return printJSON(g.stdout, struct {
					faults.CatalogInfo
					Equivalents []chaos.Equivalent `json:"equivalents"`
				}{info, chaos.Equivalents()})
			}
			printCatalog(g.stdout, info, note)
			printEquivalents(g.stdout)
			names, _ := listExperiments()
			fmt.Fprintf(g.stdout, "\nExperiments (lab chaos run <name>; format in experiments/README.md):\n  %s\n", strings.Join(names, "\n  "))
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}

func printCatalog(w io.Writer, info faults.CatalogInfo, note string) {
	fmt.Fprintln(w, "Faults (lab chaos inject <fault> --target <target> [--<param> <value>...] [--for 30s]):")
	if note != "" {
		fmt.Fprintln(w, note)
	}
	for _, k := range info.Faults {
		fmt.Fprintf(w, "\n  %s — %s\n", k.Name, k.Summary)
		fmt.Fprintf(w, "    how: %s; heal: %s", k.Mechanism, k.Heal)
		if !k.Timed {
			fmt.Fprint(w, "; instant (no --for)")
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "    targets (%s): %s\n", k.Targets, strings.Join(info.Targets.For(k), ", "))
		if len(k.Params) > 0 {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			for _, p := range k.Params {
				fmt.Fprintf(tw, "    --%s\tdefault %s\t%s\t%s\n", p.Name, p.Default, p.Range, p.Help)
			}
			tw.Flush()
		}
	}
}

func printEquivalents(w io.Writer) {
	fmt.Fprintln(w, "\nEquivalents (experiment faults applied to both variants at once):")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tRPC\tSTREAM")
	for _, e := range chaos.Equivalents() {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", e.Name, e.Describe(variantname.RPC), e.Describe(variantname.Stream))
	}
	tw.Flush()
}

// ---- inject

func newChaosInjectCmd(g *globals) *cobra.Command {
	var target, forDur, owner string
	var asJSON bool
	params := map[string]*string{}
	cmd := &cobra.Command{
		Use:   "inject <fault> --target <edge|part> [--<param> <value>...] [--for 30s]",
		Short: "Inject one fault and print its id",
		Long: `Inject one fault into the running lab. 'lab chaos list' shows every fault's
parameters (given as --<param> <value>) and valid targets. With --for the
fault heals itself; otherwise it lasts until 'lab chaos heal <id>' (or
'lab down'). A killed part starts again when its fault heals.`,
		Example: `  lab chaos inject latency --target 'ratings-rpc->movies-rpc' --latency 2s --jitter 200ms --for 30s
  lab chaos inject partition --target 'ratings-stream->broker' --for 20s
  lab chaos inject kill --target broker --for 20s
  lab chaos inject error_rate --target ratings-rpc --rate 0.2
  lab chaos inject poison --target ratings --count 10 --kind rating-range`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := faults.Request{Fault: args[0], Target: target, For: forDur, Owner: owner, Params: faults.ParamValues{}}
			for name, v := range params {
				if cmd.Flags().Changed(name) {
					req.Params[name] = *v
				}
			}
			// Check locally first for flag-shaped messages; the lab checks again.
			if target == "" {
				return fmt.Errorf("--target: %s needs a target ('lab chaos list' shows the valid ones)", args[0])
			}
			if k, err := faults.Lookup(req.Fault); err == nil {
				if _, err := k.Resolve(req.Params); err != nil {
					return flagError(err, k)
				}
			} else {
				return err
			}
			_, fc, _, err := labClients(g)
			if err != nil {
				return err
			}
			f, err := fc.Inject(cmd.Context(), req)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(f)
			}
			fmt.Fprintln(g.stdout, f.ID)
			fmt.Fprintf(g.stderr, "%s\n", describeFault(f, time.Now()))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&target, "target", "", "edge (e.g. 'ratings-rpc->movies-rpc'), part, or topic the fault acts on")
	fl.StringVar(&forDur, "for", "", "heal by itself after this `duration` (e.g. 30s)")
	fl.StringVar(&owner, "owner", "cli", "who injected it, shown in 'lab chaos status'")
	fl.BoolVar(&asJSON, "json", false, "print the fault as JSON")
	// One flag per parameter name of the catalog; each fault takes its own.
	seen := map[string]bool{}
	for _, k := range faults.Kinds() {
		for _, p := range k.Params {
			if seen[p.Name] {
				continue
			}
			seen[p.Name] = true
			params[p.Name] = fl.String(p.Name, "", paramUsage(p.Name))
		}
	}
	return cmd
}

// paramUsage says which faults take a parameter.
func paramUsage(name string) string {
	var users []string
	for _, k := range faults.Kinds() {
		if _, ok := k.Param(name); ok {
			users = append(users, k.Name)
		}
	}
	return "parameter of " + strings.Join(users, ", ") + " (see 'lab chaos list')"
}

// flagError rewrites "params.x: ..." as "--x: ..." for the command line.
func flagError(err error, k faults.Kind) error {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "params."); ok {
		name, tail, _ := strings.Cut(rest, ":")
		valid := make([]string, 0, len(k.Params))
		for _, p := range k.Params {
			valid = append(valid, "--"+p.Name)
		}
		if strings.Contains(tail, "has no parameter") {
			v := "none"
			if len(valid) > 0 {
				v = strings.Join(valid, ", ")
			}
			return fmt.Errorf("--%s: %s takes no such parameter (its parameters: %s)", name, k.Name, v)
		}
		return fmt.Errorf("--%s:%s", name, tail)
	}
	return err
}

// ---- heal

func newChaosHealCmd(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "heal <id>... | --all",
		Short: "Heal faults by id, or every active fault",
		Example: `  lab chaos heal f-3
  lab chaos heal --all`,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case all && len(args) > 0:
				return errors.New("give fault ids or --all, not both")
			case !all && len(args) == 0:
				return errors.New("which fault? give its id (see 'lab chaos status'), or --all")
			}
			_, fc, _, err := labClients(g)
			if err != nil {
				return err
			}
			var healed []faults.Fault
			if all {
				if healed, err = fc.HealAll(cmd.Context()); err != nil {
					return err
				}
			} else {
				for _, id := range args {
					f, err := fc.Heal(cmd.Context(), id)
					if err != nil {
						return err
					}
					healed = append(healed, f)
				}
			}
			if len(healed) == 0 {
				fmt.Fprintln(g.stdout, "No active fault.")
			}
			var errs []string
			for _, f := range healed {
				line := fmt.Sprintf("healed %s %s on %s", f.ID, f.Fault, f.Target)
				if f.HealError != "" {
					line += " (with an error: " + f.HealError + ")"
					errs = append(errs, f.ID)
				}
				fmt.Fprintln(g.stdout, line)
			}
			if len(errs) > 0 {
				return fmt.Errorf("healing %s did not fully succeed; see 'lab status'", strings.Join(errs, ", "))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "heal every active fault")
	return cmd
}

// ---- status

func newChaosStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the active faults (and the last ones healed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, fc, _, err := labClients(g)
			if err != nil {
				return err
			}
			l, err := fc.List(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(g.stdout, l)
			}
			now := time.Now()
			if len(l.Active) == 0 {
				fmt.Fprintln(g.stdout, "No active fault.")
			} else {
				fmt.Fprintln(g.stdout, "Active faults:")
				for _, f := range l.Active {
					fmt.Fprintf(g.stdout, "  %s\n", describeFault(f, now))
				}
			}
			if len(l.External) > 0 {
				fmt.Fprintln(g.stdout, "\nFaults in force that the lab did not inject ('lab chaos heal --all' does not remove them):")
				for _, line := range externalLines(l.External) {
					fmt.Fprintln(g.stdout, line)
				}
			}
			if n := len(l.History); n > 0 {
				fmt.Fprintln(g.stdout, "\nRecently finished:")
				for _, f := range l.History[max(0, n-5):] {
					fmt.Fprintf(g.stdout, "  %s\n", describeFault(f, now))
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}

// describeFault is one line: "f-3 latency on a->b (latency=2s) heals in 12s [cli]".
func describeFault(f faults.Fault, now time.Time) string {
	s := fmt.Sprintf("%s %s on %s", f.ID, f.Fault, f.Target)
	if f.Outcome != "" { // e.g. kill_leader: which broker it killed
		s += " → " + f.Outcome
	}
	if len(f.Params) > 0 {
		s += " (" + kv.Join(f.Params) + ")"
	}
	switch f.State {
	case faults.StateActive:
		switch {
		case !f.HealsAt.IsZero() && f.HealsAt.After(now):
			s += fmt.Sprintf(", heals in %s", f.HealsAt.Sub(now).Round(time.Second))
		case !f.HealsAt.IsZero():
			// Its heal is under way (Toxiproxy's toxic removal can take 5 s).
			s += fmt.Sprintf(", being healed (due %s ago)", now.Sub(f.HealsAt).Round(100*time.Millisecond))
		default:
			s += ", until healed"
		}
		s += fmt.Sprintf(", active for %s", now.Sub(f.InjectedAt).Round(time.Second))
	case faults.StateHealed:
		s += fmt.Sprintf(", healed %s ago by %s", now.Sub(f.HealedAt).Round(time.Second), f.HealedBy)
		if f.HealError != "" {
			s += " (error: " + f.HealError + ")"
		}
	case faults.StateDone:
		s += fmt.Sprintf(", applied %s ago", now.Sub(f.InjectedAt).Round(time.Second))
	}
	if f.Owner != "" {
		s += " [" + f.Owner + "]"
	}
	return s
}

// faultStatus adds the active faults to `lab status`.
func faultStatus(g *globals, c *supervisor.Client, r *statusReport) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	l, err := faults.NewClient(c).List(ctx)
	if err != nil {
		return nil
	}
	r.Extras["faults"] = l.Active
	r.Extras["external_faults"] = l.External
	var lines []string
	if len(l.Active) == 0 {
		lines = []string{"", "Faults: none active ('lab chaos list' shows what can be injected)."}
	} else {
		lines = []string{"", "Active faults ('lab chaos heal <id>' or 'lab chaos heal --all'):"}
		now := time.Now()
		for _, f := range l.Active {
			lines = append(lines, "  "+describeFault(f, now))
		}
	}
	if len(l.External) > 0 {
		lines = append(lines, "", "Faults in force that the lab did not inject (set through Toxiproxy's API or a part's admin endpoint):")
		lines = append(lines, externalLines(l.External)...)
	}
	return lines
}

// externalLines describes faults set outside the lab, with how to undo each.
func externalLines(fs []faults.ExternalFault) []string {
	lines := make([]string, 0, len(fs))
	for _, f := range fs {
		undo := "remove it with toxiproxy-cli or DELETE on the Toxiproxy API"
		if f.Via == "admin endpoint" {
			undo = "DELETE it on the part's admin endpoint"
		}
		lines = append(lines, fmt.Sprintf("  %s — %s", f, undo))
	}
	return lines
}

// ---- experiments

// experimentsDir is the working tree's copy of the shipped experiments.
const experimentsDir = "experiments"

// readExperiment reads an experiment by path, or a bare name from
// ./experiments or the copies built into the binary.
func readExperiment(name string) ([]byte, string, error) {
	if strings.ContainsAny(name, `/\`) || filepath.Ext(name) != "" {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, name, fmt.Errorf("experiment %s: %w", name, err)
		}
		return b, name, nil
	}
	for _, ext := range []string{".yaml", ".yml"} {
		p := filepath.Join(experimentsDir, name+ext)
		if b, err := os.ReadFile(p); err == nil {
			return b, p, nil
		}
	}
	for _, ext := range []string{".yaml", ".yml"} {
		if b, err := fs.ReadFile(experiments.FS(), name+ext); err == nil {
			return b, path.Join("experiments", name+ext) + " (built in)", nil
		}
	}
	names, _ := listExperiments()
	return nil, name, fmt.Errorf("experiment %q: no such file, and not a shipped experiment (shipped: %s)", name, strings.Join(names, ", "))
}

// listExperiments names the shipped experiments (working tree and built in).
func listExperiments() ([]string, error) {
	seen := map[string]bool{}
	for _, dir := range []fs.FS{os.DirFS(experimentsDir), experiments.FS()} {
		entries, err := fs.ReadDir(dir, ".")
		if err != nil {
			continue
		}
		for _, e := range entries {
			if ext := path.Ext(e.Name()); ext == ".yaml" || ext == ".yml" {
				seen[strings.TrimSuffix(e.Name(), ext)] = true
			}
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

func experimentName(file string) string {
	base := filepath.Base(strings.TrimSuffix(file, " (built in)"))
	return strings.TrimSuffix(base, filepath.Ext(base))
}

// chaosLab describes the running lab for validation, or a default lab.
func chaosLab(ctx context.Context, g *globals) (chaos.Lab, *supervisor.Client, *faults.Client, supervisor.State, error) {
	lab := chaos.Lab{ScenarioDirs: scenarioDirs(filepath.Join("loadtests", "scenarios"))}
	c, fc, st, err := labClients(g)
	if err != nil {
		return lab, nil, nil, st, err
	}
	ci, err := fc.Catalog(ctx)
	if err != nil {
		return lab, nil, nil, st, fmt.Errorf("the lab's fault API: %w", err)
	}
	lab.Targets = ci.Targets
	lab.Breakers = st.Options.Breakers
	lab.Delivery = st.Options.Delivery
	lab.Kafka = st.Options.Kafka.PlatformName()
	lab.Replicas = st.Options.Replicas
	return lab, c, fc, st, nil
}

func newChaosValidateCmd(g *globals) *cobra.Command {
	var variants []string
	var f chaosRunFlags
	cmd := &cobra.Command{
		Use:   "validate <experiment>...",
		Short: "Check experiment files without running them (against the running lab, or a default one) and show what each would run",
		Long: `Check experiment files as 'lab chaos run' does, without injecting anything,
and show what each would run: the variants and the load, then every method
step in time order — each fault with the concrete faults every variant gets
(or why a variant gets none), each action (movie-add) with its movie and
what the run expects of it.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sets, err := f.overrides(cmd)
			if err != nil {
				return err
			}
			lab, _, _, _, err := chaosLab(cmd.Context(), g)
			offline := err != nil
			if offline {
				lab.Targets = faults.TargetsFor(parts.Options{}, g.ports())
				lab.IgnoreRequires = true
			}
			var errs []error
			for _, name := range args {
				data, file, err := readExperiment(name)
				if err == nil {
					var e *chaos.Experiment
					if e, err = chaos.ParseWith(data, file, sets); err == nil {
						var p *chaos.Plan
						if offline && (e.Requires.Kafka != "" || e.Requires.Replicas != "") {
							// Without a lab, check against the lab it asks for.
							lab.Targets = faults.TargetsFor(chaos.RequiredOptions(e), g.ports())
						}
						if p, err = chaos.Validate(e, lab, variants); err == nil {
							fmt.Fprintf(g.stdout, "%s: ok — %q\n", file, e.Title)
							for _, l := range p.Describe() {
								fmt.Fprintf(g.stdout, "  %s\n", l)
							}
						}
					}
				}
				if err != nil {
					errs = append(errs, err)
				}
			}
			if offline {
				fmt.Fprintln(g.stderr, "(checked against a default lab: the lab is not running)")
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().StringSliceVar(&variants, "variants", nil, "variants to check, replacing the file's (rpc, stream)")
	f.addOverrideFlags(cmd)
	return cmd
}

// maxRepeat bounds `lab chaos run --repeat`.
const maxRepeat = 50

// chaosRunFlags are `lab chaos run`'s flags.
type chaosRunFlags struct {
	variants []string
	quiet    bool
	rate     string
	duration string
	seed     string
	sets     []string
	repeat   int
}

// overrides turns the shortcut flags and every --set into overrides, in
// that order (a later one wins), each checked for its form.
func (f *chaosRunFlags) overrides(cmd *cobra.Command) ([]chaos.Override, error) {
	var out []chaos.Override
	if cmd.Flags().Changed("rate") {
		r := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(f.rate), "/s"))
		if _, err := strconv.ParseFloat(r, 64); err != nil || r == "" {
			return nil, fmt.Errorf("--rate %s: want requests per second per variant, e.g. --rate 20 or --rate 20/s", f.rate)
		}
		out = append(out, chaos.Override{Path: "load.rate", Value: r})
	}
	if cmd.Flags().Changed("duration") {
		if _, err := time.ParseDuration(f.duration); err != nil {
			return nil, fmt.Errorf("--duration %s: want a duration such as 40s or 1m30s", f.duration)
		}
		out = append(out, chaos.Override{Path: "load.duration", Value: f.duration})
	}
	if cmd.Flags().Changed("seed") {
		out = append(out, chaos.Override{Path: "load.seed", Value: f.seed})
	}
	for _, s := range f.sets {
		o, err := chaos.ParseOverride(s)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// printAndRender prints a run's verdict and renders its report beside the journal.
func printAndRender(g *globals, res *chaos.Result) {
	chaos.PrintVerdict(g.stdout, res.Journal, res.JournalPath)
	if out, rerr := report.RenderFile(res.JournalPath, report.DefaultDir(res.JournalPath)); rerr != nil {
		fmt.Fprintf(g.stderr, "report: %v (render it later with 'lab report %s')\n", rerr, res.JournalPath)
	} else {
		fmt.Fprintf(g.stdout, "\nReport: %s\n        %s\n(open the HTML in a browser; 'lab report --compare A B' sets two runs side by side)\n", out.HTML, out.Markdown)
	}
}

// runAndReport runs one experiment on a checked lab, prints the verdict and
// renders the report. The error is ErrNotHeld (wrapped) when a hypothesis
// did not hold; the result is there then too.
func runAndReport(ctx context.Context, g *globals, p *chaos.Plan, env chaos.Env) (*chaos.Result, error) {
	if err := chaos.Preflight(ctx, p, env, 30*time.Second); err != nil {
		return nil, err
	}
	res, err := chaos.Run(ctx, p, env)
	if err != nil {
		return nil, err
	}
	printAndRender(g, res)
	if !res.Held() {
		var failed []string
		for _, v := range res.Journal.Variants {
			if !res.Journal.Verdict[v] {
				failed = append(failed, v)
			}
		}
		if res.Journal.Error != "" && ctx.Err() != nil {
			return res, errors.New("experiment interrupted; every fault it injected was healed")
		}
		return res, fmt.Errorf("%w for: %s", chaos.ErrNotHeld, strings.Join(failed, ", "))
	}
	return res, nil
}

func newChaosRunCmd(g *globals) *cobra.Command {
	var f chaosRunFlags
	cmd := &cobra.Command{
		Use:   "run <experiment> [--variants rpc,stream] [--rate N] [--duration D] [--seed S] [--set path=value]... [--repeat N]",
		Short: "Run a chaos experiment: same load, same faults, both variants, a verdict each",
		Long: `Run an experiment file (a path, or the name of a shipped one in experiments/):
the load runs on every selected variant; each fault of the method is applied
to the equivalent parts or edges of every variant at the same moment; the
steady-state hypothesis is checked before the first fault, every second while
faults are active, and after recovery; after a drain the audit checks that no
acknowledged rating was lost or counted twice.

Parameters come from the file; the command line changes any of them without
editing it:
  --rate, --duration, --seed   the load (same as --set load.rate=..., ...)
  --set path=value             any field, by the path the file's errors use:
                               load.rate, steady_state.recovery,
                               method[0].for, method[1].params.latency,
                               steady_state.probes[2].max, load.retries.max
                               (the value is YAML: 20, 3s, off, [rpc],
                               {latency: 3s}); repeat --set for several
A later override wins. Each is checked exactly as if it were written in the
file: an unknown path or a value of the wrong type is an error naming the
--set, and nothing is injected. The journal records every override.

Tolerances come from the lab's one SLO (experiments/README.md, "The SLO");
a probe that departs from it says why.

--repeat N runs the experiment N times back to back on the same lab (same
seed, same faults: only the lab's own timing varies), each with its journal
and report, then writes a summary beside the journals with the median and the
range (min – max) of every figure per variant: exact client success and
percentiles, audit counts, each fault's recovery times, and how many runs held
('lab report --repeats JOURNAL...' writes it again from the journals).

The whole file is checked before anything is injected; an error names the
field and its line. Progress is shown while it runs; Ctrl-C heals every fault
the run injected (and ends a series). A journal is written to
<dir>/journals/<run>.json and rendered into a report beside it (HTML with
charts, and Markdown); 'lab report' renders it again. Exit status 0 only when
every variant's hypothesis held (in every run of a series).`,
		Example: `  lab chaos run movies-outage
  lab chaos run experiments/ratings-crash.yaml --variants stream
  # a shorter, slower run: the fault at +10s for 10s within 40s of load
  lab chaos run movies-outage --duration 40s --rate 20 --set 'method[0].at=10s' --set 'method[0].for=10s'
  # the same experiment with another fault parameter and a looser recovery
  lab chaos run movies-latency --set 'method[0].params={latency: 600ms}' --set steady_state.recovery=20s
  # clients that retry unknown outcomes with the same request id
  lab chaos run ratings-pause --set load.retries.max=3 --set load.retries.backoff=250ms
  # how stable are the figures? five runs, median and range of each
  lab chaos run ratings-crash --repeat 5 --quiet
  lab chaos validate my-experiment.yaml --set load.rate=500`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if f.repeat < 1 || f.repeat > maxRepeat {
				return fmt.Errorf("--repeat %d: want 1 to %d runs", f.repeat, maxRepeat)
			}
			sets, err := f.overrides(cmd)
			if err != nil {
				return err
			}
			data, file, err := readExperiment(args[0])
			if err != nil {
				return err
			}
			e, err := chaos.ParseWith(data, file, sets)
			if err != nil {
				return err
			}
			lab, c, fc, st, err := chaosLab(ctx, g)
			if err != nil {
				return err
			}
			p, err := chaos.Validate(e, lab, f.variants)
			if err != nil {
				return err
			}
			ports := layout.Ports{Base: st.PortBase}
			settings := map[string]string{"breakers": map[bool]string{true: "on", false: "off"}[st.Options.Breakers],
				"delivery": st.Options.Delivery, "scenario": p.Scenario.Name, "experiment": experimentName(file),
				"format": formatOf(st.Options), "restore": cmp.Or(st.Options.Restore, "changelog"),
				"standby_replicas": strconv.Itoa(st.Options.StandbyReplicas)}
			if len(sets) > 0 {
				var ss []string
				for _, o := range sets {
					ss = append(ss, o.String())
				}
				settings["overrides"] = strings.Join(ss, " ")
			}
			env := chaos.Env{
				Dir: g.dir(), Control: c, Faults: fc, Targets: lab.Targets,
				APIs:           map[string]string{variantname.RPC: "http://" + ports.WebserverRPC(), variantname.Stream: "http://" + ports.WebserverStream()},
				ControlMetrics: "http://" + st.Control + "/metrics", LoadMetricsAddr: ports.Load(),
				// Direct, not an edge proxy: lag and dead letters are read
				// from outside the processes and past every fault (every
				// node of a cluster, or the external bootstrap).
				Brokers:  st.Options.KafkaBootstrap(ports),
				Settings: settings,
				Platform: st.Options.Kafka.Describe(),
				Name:     experimentName(file), Out: g.stderr, TTY: isTerminal(g.stderr),
			}
			if f.quiet {
				env.Out = io.Discard
			}
			if runs := p.ResilienceRuns(); len(runs) > 0 {
				if f.repeat > 1 {
					return fmt.Errorf("--repeat %d: an experiment with resilience settings runs once per setting already; repeat it with a shell loop", f.repeat)
				}
				return runResilience(ctx, g, p, runs, env, c)
			} else if len(e.Resilience) > 0 {
				fmt.Fprintf(g.stderr, "Note: the experiment's resilience settings are the RPC variant's callers'; rpc does not run (--variants %s), so they are not applied and the experiment runs once.\n", strings.Join(p.Variants, ","))
			}
			var names []string
			var journals []journal.Journal
			var failed []string
			for i := 1; i <= f.repeat; i++ {
				if f.repeat > 1 {
					fmt.Fprintf(g.stderr, "\n== run %d of %d ==\n", i, f.repeat)
				}
				if err := chaos.Preflight(ctx, p, env, 30*time.Second); err != nil {
					if i > 1 {
						err = fmt.Errorf("run %d of %d: %w (the runs before it are summarized below)", i, f.repeat, err)
						fmt.Fprintln(g.stderr, err)
						break
					}
					return err
				}
				res, err := chaos.Run(ctx, p, env)
				if err != nil {
					if i > 1 {
						fmt.Fprintf(g.stderr, "run %d of %d: %v\n", i, f.repeat, err)
						break
					}
					return err
				}
				printAndRender(g, res)
				names = append(names, res.JournalPath)
				journals = append(journals, res.Journal)
				if !res.Held() {
					for _, v := range res.Journal.Variants {
						if !res.Journal.Verdict[v] && !slices.Contains(failed, v) {
							failed = append(failed, v)
						}
					}
				}
				if res.Journal.Error != "" && ctx.Err() != nil {
					if f.repeat > 1 && len(journals) > 1 {
						writeRepeats(g, names[:len(names)-1], journals[:len(journals)-1])
					}
					return errors.New("experiment interrupted; every fault it injected was healed")
				}
			}
			if f.repeat > 1 {
				writeRepeats(g, names, journals)
				if len(journals) < f.repeat {
					return fmt.Errorf("only %d of %d runs completed", len(journals), f.repeat)
				}
			}
			if len(failed) > 0 {
				return fmt.Errorf("%w for: %s", chaos.ErrNotHeld, strings.Join(failed, ", "))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&f.variants, "variants", nil, "variants to run, replacing the file's (rpc, stream)")
	fl.BoolVar(&f.quiet, "quiet", false, "no progress lines")
	f.addOverrideFlags(cmd)
	fl.IntVar(&f.repeat, "repeat", 1, fmt.Sprintf("run the experiment this many times (1..%d) and summarize median and range per figure", maxRepeat))
	return cmd
}

// addOverrideFlags adds --rate, --duration, --seed and --set.
func (f *chaosRunFlags) addOverrideFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.rate, "rate", "", "constant `requests/s` per variant, replacing load.rate (e.g. 20 or 20/s)")
	fl.StringVar(&f.duration, "duration", "", "length of the load, replacing load.duration (the fault times stay: shorten them with --set)")
	fl.StringVar(&f.seed, "seed", "", "seed of the request sequence (0..4294967295), replacing load.seed")
	fl.StringArrayVar(&f.sets, "set", nil, "set any field of the experiment: `path=value` (repeatable; see 'lab chaos run --help')")
}

// writeRepeats writes and prints the summary of a series of runs.
func writeRepeats(g *globals, names []string, journals []journal.Journal) {
	r := report.SummarizeRepeats(names, journals)
	jsonPath, mdPath, err := report.WriteRepeatFiles(r, report.DefaultRepeatsDir(names[0], len(names)))
	fmt.Fprintln(g.stdout)
	_ = r.WriteMarkdown(g.stdout)
	if err != nil {
		fmt.Fprintf(g.stderr, "repeat summary: %v\n", err)
		return
	}
	fmt.Fprintf(g.stdout, "\nSummary of %d runs: %s\n                   %s\n('lab report --repeats JOURNAL...' writes it again from the journals)\n", len(names), mdPath, jsonPath)
}
