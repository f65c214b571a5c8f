package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/lab/supervise"
	"github.com/ratingslab/lab/lab/supervisor"
	"github.com/ratingslab/lab/services/movies/legacydb"
)

type upFlags struct {
	breakers string
	delivery string
	restore  string
	standby  int
	replicas []string
	partFlag []string
	timeout  time.Duration
	noExtras bool
	contract contractFlags
	kafka    kafkaFlags
}

func newUpCmd(g *globals) *cobra.Command {
	f := &upFlags{}
	cmd := &cobra.Command{
		Use:         "up",
		Annotations: map[string]string{annotPorts: portsOwn},
		Short:       "Start the whole lab in the background and wait until every part is healthy",
		Long: `Start the lab: a detached supervisor that runs every part as its own OS process
(broker, legacy DB services, both variants, edge fault proxies, and Prometheus
when installed), waits until each one is really healthy, and prints every URL.

If a part does not become healthy, 'lab up' prints its last log lines, stops
everything it started and exits non-zero. A lab is handed over whole or not
at all: if 'lab up' itself ends before every part is healthy (Ctrl-C, killed,
its terminal closed), the supervisor stops every part and exits on its own.
While it starts, <dir>/lab.json says "phase": "starting", so 'lab status'
shows its progress and 'lab down' stops it. If the lab is already up, it
says so and exits 0. Logs: <dir>/logs/<part>.log.
` + kafkaFlagsHelp,
		Example: `  lab up
  lab up --breakers=off                  # show the naked RPC cascade
  lab up --replicas ratings-stream=2     # two stream processors share the partitions
  lab up --replicas ratings-stream=2 --standby-replicas 1   # ... each with a warm copy of the other's
  lab up --part-flag ratings-rpc=--max-conns=50 --part-flag webserver-rpc=--max-inflight=400
  lab up --dir /tmp/lab2 --port-base 7800   # a second lab beside the first
  lab up --format avro                   # Avro events through the embedded schema registry
  lab up --format avro --registry apicurio   # ... through Apicurio Registry (make apicurio first)
  make kafka && lab up --kafka cluster   # three Apache Kafka nodes instead of the embedded broker
  lab up --kafka-bootstrap 127.0.0.1:9092   # your own Kafka cluster`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runUp(cmd.Context(), g, f) },
	}
	cmd.Flags().StringVar(&f.breakers, "breakers", "on", "circuit breakers in the RPC variant: on or off")
	cmd.Flags().StringVar(&f.restore, "restore", "changelog", "how effectively-once ratings-stream replicas take partitions over: changelog (write the state to ratings-stream-changelog and restore a taken-over partition from it, then read the tail) or log (no changelog: resume from the replica's own snapshot or replay the partition from offset 0, to compare with)")
	cmd.Flags().IntVar(&f.standby, "standby-replicas", 0, "`N` other ratings-stream replicas keep a warm copy of each partition's state by tailing the changelog (Kafka Streams' num.standby.replicas; 0: none): a replica taking a partition over reads only the changelog written since; needs --replicas ratings-stream=N+1 or more and the changelog (effectively-once, --restore changelog)")
	cmd.Flags().StringVar(&f.delivery, "delivery", "effectively-once", "ratings-stream delivery: effectively-once (state and offsets in one SQLite transaction), at-least-once, or transactional (Kafka transactions with a changelog topic)")
	cmd.Flags().StringSliceVar(&f.replicas, "replicas", nil, "replicas per part, as `part=N` (only ratings-stream scales, up to 4)")
	cmd.Flags().StringArrayVar(&f.partFlag, "part-flag", nil, "an extra flag for one part (every replica of it), as `part=--flag=value`, repeatable; checked against the part's flags before anything starts, e.g. webserver-rpc=--max-conns=50 ('lab serve <part> --help' lists them)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 60*time.Second, "how long to wait for every part to become healthy (with --kafka cluster at least 3m)")
	cmd.Flags().StringVar(&f.kafka.platform, "kafka", "", "Kafka platform: embedded (kfake, default) or cluster (3 Apache Kafka KRaft nodes); see above")
	cmd.Flags().StringVar(&f.kafka.bootstrap, "kafka-bootstrap", "", "use your own Kafka cluster at `host:port[,host:port...]` (no broker parts)")
	cmd.Flags().StringVar(&f.kafka.home, "kafka-home", "", "Apache Kafka distribution `dir` for --kafka cluster (default $KAFKA_HOME, else .cache/kafka from 'make kafka')")
	cmd.Flags().StringVar(&f.kafka.heap, "kafka-heap", "", "JVM heap `size` of each cluster node (default 256m)")
	cmd.Flags().IntVar(&f.kafka.nodes, "kafka-nodes", 0, "`nodes` of the embedded broker (1..3; default 1): several kfake nodes in one process, for node-loss and leader-move faults")
	cmd.Flags().BoolVar(&f.noExtras, "no-prometheus", false, "do not start Prometheus/Grafana even when installed")
	f.contract.register(cmd)
	return cmd
}

func (f *upFlags) options() (parts.Options, error) {
	o := parts.Options{Replicas: map[string]int{}}
	switch f.breakers {
	case "on":
		o.Breakers = true
	case "off":
	default:
		return o, fmt.Errorf("--breakers %q: must be on or off", f.breakers)
	}
	switch f.delivery {
	case "effectively-once", "at-least-once", "transactional":
		o.Delivery = f.delivery
	default:
		return o, fmt.Errorf("--delivery %q: must be effectively-once, at-least-once or transactional", f.delivery)
	}
	switch f.restore {
	case "changelog":
	case "log":
		o.Restore = f.restore
	default:
		return o, fmt.Errorf("--restore %q: must be changelog or log", f.restore)
	}
	for _, r := range f.replicas {
		name, n, ok := strings.Cut(r, "=")
		count, err := strconv.Atoi(n)
		if !ok || err != nil {
			return o, fmt.Errorf("--replicas %q: want part=N, e.g. ratings-stream=2", r)
		}
		p, err := parts.Lookup(name)
		if err != nil {
			return o, fmt.Errorf("--replicas: %w", err)
		}
		if count < 1 || count > p.MaxReplicas {
			return o, fmt.Errorf("--replicas %s=%d: must be between 1 and %d", name, count, p.MaxReplicas)
		}
		o.Replicas[name] = count
	}
	for _, pf := range f.partFlag {
		if err := addPartFlag(&o, pf); err != nil {
			return o, err
		}
	}
	if err := checkStandby(f.standby, o); err != nil {
		return o, err
	}
	o.StandbyReplicas = f.standby
	if err := f.contract.apply(&o); err != nil {
		return o, err
	}
	if f.timeout <= 0 || f.timeout > 10*time.Minute {
		return o, fmt.Errorf("--timeout %v: must be between 0 and 10m", f.timeout)
	}
	return o, nil
}

// addPartFlag checks one --part-flag against the part's own flags (a bad
// pool size is refused here, before anything starts) and records it.
func addPartFlag(o *parts.Options, pf string) error {
	name, fl, ok := strings.Cut(pf, "=")
	if !ok || !strings.HasPrefix(fl, "-") {
		return fmt.Errorf("--part-flag %q: want part=--flag=value, e.g. webserver-rpc=--max-conns=50", pf)
	}
	p, err := parts.Lookup(name)
	if err != nil {
		return fmt.Errorf("--part-flag: %w", err)
	}
	if p.NewRunner == nil {
		return fmt.Errorf("--part-flag %s: this part is not a lab service and takes no flags", name)
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	p.NewRunner().Flags(fs)
	if err := fs.Parse([]string{fl}); err != nil {
		return fmt.Errorf("--part-flag %s: %w ('lab serve %s --help' lists its flags)", pf, err, name)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("--part-flag %s: give one flag with its value joined by '=', e.g. %s=--max-conns=50", pf, name)
	}
	if o.Extra == nil {
		o.Extra = map[string][]string{}
	}
	o.Extra[name] = append(o.Extra[name], fl)
	return nil
}

func runUp(ctx context.Context, g *globals, f *upFlags) error {
	opts, err := f.options()
	if err != nil {
		return err
	}
	dir := g.dir()
	if st, err := supervisor.ReadState(dir); err == nil {
		hctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		herr := supervisor.NewClient(st.Control).Healthy(hctx)
		cancel()
		if herr == nil && st.Current() == supervisor.PhaseStarting {
			return fmt.Errorf("the lab in %s is still starting (supervisor pid %d): another 'lab up' is bringing it up. 'lab status' shows its progress; 'lab down' stops it", dir, st.PID)
		}
		if herr == nil && st.Current() == supervisor.PhaseStopping {
			return fmt.Errorf("the lab in %s is stopping (supervisor pid %d); run 'lab up' again once 'lab status' says it is not running", dir, st.PID)
		}
		if herr == nil {
			fmt.Fprintf(g.stdout, "The lab in %s is already up (supervisor pid %d). 'lab status' shows its health; 'lab down' stops it.\n", dir, st.PID)
			return nil
		}
		if live := liveProcesses(dir, st); len(live) > 0 {
			return unresponsiveLabError(dir, st, live, herr)
		}
		fmt.Fprintf(g.stderr, "Found a stale lab state in %s (supervisor pid %d and every recorded part are gone); cleaning up.\n", dir, st.PID)
		_ = supervisor.RemoveState(dir)
	} else if !errors.Is(err, supervisor.ErrNoState) {
		return err
	} else if live := liveProcesses(dir, supervisor.State{}); len(live) > 0 {
		// No lab.json (a lab still starting, or one whose state file was
		// deleted) but recorded processes live: they hold the ports and data.
		return unresponsiveLabError(dir, supervisor.State{Control: "(no lab.json)"}, live, errors.New("no state file"))
	}
	ports := g.ports()
	// Kafka first: a bad platform flag, Kafka home, Java or bootstrap is
	// named before anything is written.
	kafkaOpts, kafkaNotes, err := f.kafka.options(ctx, g, ports)
	if err != nil {
		return err
	}
	if err := dir.Prepare(); err != nil {
		return err
	}
	if err := checkFormat(dir, opts.Format); err != nil {
		return err
	}
	if kafkaOpts.PlatformName() == parts.KafkaCluster {
		if kafkaOpts.ClusterID, err = clusterID(dir); err != nil {
			return err
		}
	}
	if err := checkPlatform(dir, kafkaOpts); err != nil {
		return err
	}
	opts.Kafka = kafkaOpts
	bound := f.timeout
	if kafkaOpts.PlatformName() == parts.KafkaCluster && bound < 3*time.Minute {
		bound = 3 * time.Minute // three JVMs on a small machine
	}
	extras, notes, err := optionalExtras(g, opts, f.noExtras)
	if err != nil {
		return err
	}
	if err := checkPortsFree(ports, opts, extras); err != nil {
		return err
	}
	db, created, err := legacydb.Create(dir.LegacyDB())
	if err != nil {
		return fmt.Errorf("legacy DB %s: %w", dir.LegacyDB(), err)
	}
	db.Close()
	if created {
		fmt.Fprintf(g.stdout, "Created the legacy movies DB %s (seed catalog).\n", dir.LegacyDB())
	}

	spec, _ := json.Marshal(supervise.Spec{Options: opts, Extras: extras})
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(dir.SupervisorLog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("supervisor log: %w", err)
	}
	defer logf.Close()
	// The handover pipe: the supervisor holds its read end, this command
	// the write end. If this command dies before it hands the lab over, the
	// supervisor reads EOF and stops every part (supervisor/handover.go).
	handR, handW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("handover pipe: %w", err)
	}
	defer handW.Close()
	// The supervisor runs from its own small binary when make build put an
	// up-to-date one beside lab (lab/supervise): it then keeps ~8 MiB fewer
	// pages of code resident than as `lab supervise`.
	lab := []string{"--dir", string(dir), "--port-base", strconv.Itoa(ports.Base)}
	handover := []string{"--handover-fd", "3", "--spec", string(spec)}
	cmd := exec.Command(exe, slices.Concat(lab, []string{"supervise"}, handover)...)
	if sup := supervisor.SupervisorBinary(exe); sup != "" {
		cmd = exec.Command(sup, slices.Concat([]string{"--lab", exe}, lab, handover)...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{handR} // fd 3
	cmd.Env = append(os.Environ(), "LAB_DIR="+string(dir))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // detached: outlives this command once handed over
	start := time.Now()
	err = cmd.Start()
	handR.Close()
	if err != nil {
		return fmt.Errorf("start supervisor: %w", err)
	}
	supPID := cmd.Process.Pid
	// Recorded for 'lab down' in case the supervisor stops answering. The
	// pids dir may not exist yet in a fresh state dir (the supervisor makes
	// it too): without it the pid was lost and a killed start left a
	// supervisor nothing could find.
	if err = os.MkdirAll(dir.Path("pids"), 0o755); err == nil {
		err = os.WriteFile(dir.Path("pids", "supervisor.pid"), []byte(strconv.Itoa(supPID)), 0o644)
	}
	if err != nil {
		fmt.Fprintf(g.stderr, "warning: could not record the supervisor's pid: %v\n", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	fmt.Fprintf(g.stdout, "Starting the lab in %s (supervisor pid %d, ports %d-%d)...\n", dir, supPID, ports.Base, ports.Base+layout.PortBlock-1)

	client := supervisor.NewClient(ports.Control())
	if err := waitAllHealthy(ctx, g, client, exited, start, bound); err != nil {
		fmt.Fprintf(g.stderr, "\nlab up failed: %v\n", err)
		printWarnings(ctx, g, client) // a broker that lost data is often why
		fmt.Fprintf(g.stderr, "Stopping what was started...\n")
		stopSupervisor(context.Background(), dir, client, supPID, exited)
		return errors.New("the lab did not come up; see the log lines above and " + dir.Logs())
	}
	if err := recordFormat(dir, opts.Format); err != nil {
		fmt.Fprintf(g.stderr, "warning: could not record the log's format: %v\n", err)
	}
	if err := setCompatibility(ctx, ports, opts, f.contract.compatibility); err != nil {
		fmt.Fprintf(g.stderr, "\nlab up failed: %v\nStopping what was started...\n", err)
		stopSupervisor(context.Background(), dir, client, supPID, exited)
		return err
	}
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = client.Handover(hctx)
	cancel()
	if err != nil {
		fmt.Fprintf(g.stderr, "\nlab up failed: the supervisor did not take the lab over: %v\nStopping what was started...\n", err)
		stopSupervisor(context.Background(), dir, client, supPID, exited)
		return err
	}
	fmt.Fprintf(g.stdout, "\nAll parts healthy in %.1fs.\n\n", time.Since(start).Seconds())
	printWarnings(ctx, g, client)
	printURLs(g, ports, opts, extras)
	printRegistry(g, ports, opts)
	for _, n := range append(kafkaNotes, notes...) {
		fmt.Fprintln(g.stdout, n)
	}
	fmt.Fprintf(g.stdout, "\nNext: 'lab status' for health, 'lab load --scenario smoke' to drive both variants, 'lab chaos list' for faults, 'lab down' to stop.\n")
	return nil
}

// waitAllHealthy polls the supervisor until every part is healthy, printing
// each part as it becomes ready, or fails naming the part and its last log lines.
func waitAllHealthy(ctx context.Context, g *globals, c *supervisor.Client, exited <-chan error, start time.Time, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	seen := map[string]bool{}
	var last []supervisor.PartStatus
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("the supervisor exited (%v):\n%s", err, tailLog(g.dir().SupervisorLog(), 20))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			var bad []string
			for _, p := range last {
				if p.Health != supervisor.HealthOK {
					bad = append(bad, fmt.Sprintf("%s is %s (%s); last log lines of %s:\n%s", p.Name, p.Health, p.Error, p.Log, tailLog(p.Log, 15)))
				}
			}
			if len(last) == 0 {
				bad = append(bad, "the supervisor's control API never answered:\n"+tailLog(g.dir().SupervisorLog(), 20))
			}
			return fmt.Errorf("not healthy after %v:\n%s", bound, strings.Join(bad, "\n"))
		}
		pc, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := c.Parts(pc)
		cancel()
		if err == nil {
			last = st
			all := len(st) > 0
			for _, p := range st {
				switch p.Health {
				case supervisor.HealthOK:
					if !seen[p.Name] {
						seen[p.Name] = true
						fmt.Fprintf(g.stdout, "  ✓ %-18s healthy  %-21s (%.1fs)\n", p.Name, p.Addr, time.Since(start).Seconds())
					}
				case supervisor.HealthExited:
					return fmt.Errorf("%s exited (%s); last log lines of %s:\n%s", p.Name, p.Error, p.Log, tailLog(p.Log, 15))
				case supervisor.HealthFailed:
					return fmt.Errorf("%s failed: %s\nlast log lines of %s:\n%s", p.Name, p.Error, p.Log, tailLog(p.Log, 15))
				default:
					all = false
				}
			}
			if all {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkPortsFree fails fast, naming the first port already in use.
func checkPortsFree(p layout.Ports, opts parts.Options, extras []supervisor.Extra) error {
	type use struct{ addr, what string }
	uses := []use{{p.Control(), "supervisor control API"}, {p.Toxiproxy(), "toxiproxy API"}}
	for _, in := range supervisor.Instances(opts) {
		uses = append(uses, use{in.Addr(p), in.Name})
		if in.Part.Admin != nil {
			uses = append(uses, use{in.Part.AdminAddr(opts, p, in.Index), in.Name + " admin listener"})
		}
	}
	for _, e := range parts.EdgesFor(opts) {
		uses = append(uses, use{e.Listen(p), "edge proxy " + e.Name})
	}
	for _, x := range extras {
		uses = append(uses, use{x.Addr, x.Name})
	}
	for addr, what := range kafkaPortUses(p, opts) {
		uses = append(uses, use{addr, what})
	}
	sort.SliceStable(uses, func(i, j int) bool { return uses[i].addr < uses[j].addr })
	for _, u := range uses {
		ln, err := net.Listen("tcp", u.addr)
		if err != nil {
			return fmt.Errorf("port %s (%s) is already in use — is another lab running? Stop it with 'lab down', or pick another --port-base", u.addr, u.what)
		}
		ln.Close()
	}
	return nil
}

func printURLs(g *globals, p layout.Ports, opts parts.Options, extras []supervisor.Extra) {
	w := g.stdout
	fmt.Fprintf(w, "  RPC variant     http://%s/   (webserver-rpc: page and /api)\n", p.WebserverRPC())
	fmt.Fprintf(w, "  Log variant     http://%s/   (webserver-stream: page and /api)\n", p.WebserverStream())
	for _, l := range kafkaURLs(p, opts) {
		fmt.Fprintln(w, l)
	}
	fmt.Fprintf(w, "  Control API     http://%s/v1/parts\n", p.Control())
	fmt.Fprintf(w, "  Toxiproxy API   http://%s/proxies\n", p.Toxiproxy())
	fmt.Fprintf(w, "  Admin           each part's port + 64, loopback only: /healthz, /metrics, /debug/pprof/, /admin/ (e.g. http://%s/debug/pprof/)\n", p.AdminWebserverRPC())
	for _, x := range extras {
		fmt.Fprintf(w, "  %-15s http://%s/\n", x.Name, x.Addr)
	}
	fmt.Fprintf(w, "  Logs            %s\n", g.dir().Logs())
	if !opts.Breakers {
		fmt.Fprintln(w, "  (circuit breakers are OFF in the RPC variant)")
	}
}

// printWarnings shows what healthy parts reported as worth knowing (a
// broker that found its data dir damaged), before anything else.
func printWarnings(ctx context.Context, g *globals, c *supervisor.Client) {
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	ps, err := c.Parts(pctx)
	if err != nil {
		return
	}
	for _, p := range ps {
		if p.Warning != "" {
			fmt.Fprintf(g.stdout, "WARNING from %s: %s\n  (details: %s)\n\n", p.Name, p.Warning, p.Log)
		}
	}
}

// tailLog returns the last n lines of a file, indented.
func tailLog(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "    (no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

// checkStandby refuses standby replicas the lab cannot place: each needs a
// ratings-stream replica besides the partition's owner, and the changelog
// they are copies of.
func checkStandby(n int, o parts.Options) error {
	if n == 0 {
		return nil
	}
	replicas := max(o.Replicas["ratings-stream"], 1)
	switch {
	case n < 0:
		return fmt.Errorf("--standby-replicas %d: must be 0 (none) or more", n)
	case n >= replicas:
		return fmt.Errorf("--standby-replicas %d: each standby is another ratings-stream replica than the partition's owner; start at least %d (--replicas ratings-stream=%d), or use fewer standbys", n, n+1, n+1)
	case o.Delivery != "effectively-once" || o.Restore != "":
		return fmt.Errorf("--standby-replicas %d: standby replicas are copies of the changelog, kept with --delivery effectively-once and --restore changelog only", n)
	}
	return nil
}
