// Package supervisor runs a lab: every part as its own OS process, the edge
// fault proxies, and a loopback-only control API. It restarts nothing on its
// own, because faults must stay visible.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/machinecpu"
	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/services/lib/metricname"
)

// StopGrace is how long a part gets between SIGTERM and SIGKILL.
const StopGrace = 5 * time.Second

// Config is what `lab up` hands the supervisor process.
type Config struct {
	Dir     layout.Dir
	Ports   layout.Ports
	Options parts.Options
	// Exe is the lab binary: `lab serve <part>` when PartExe is empty, and
	// `lab replay` for replay forks.
	Exe string
	// PartExe, when set, runs the parts instead (`lab-part serve <part>`,
	// the same flags): a binary linking only the parts, so each part's
	// process keeps fewer pages resident (PartBinary).
	PartExe string
	// Extras are optional processes that are not lab parts (Prometheus, Grafana).
	Extras []Extra
	// Handover is the read end of a pipe from the `lab up` that started the
	// supervisor (handover.go): EOF before POST /v1/handover stops the lab.
	// Nil when nobody waits to hand the lab over.
	Handover io.Reader
}

// Extra is an optional external process run beside the parts.
type Extra struct {
	Name, Variant, Path, Addr, HealthURL string
	Args                                 []string
	Env                                  []string // added to the supervisor's environment
}

// Supervisor owns the lab's processes.
type Supervisor struct {
	cfg     Config
	log     *slog.Logger
	procs   []*process // start order
	byName  map[string]*process
	edges   *Edges
	reg     *prometheus.Registry
	partUp  *prometheus.GaugeVec
	hooks   []func(context.Context) // run first at shutdown (heal faults)
	setups  []setup                 // parts' Setup, run after the brokers started
	mux     *http.ServeMux
	stopped chan struct{}
	once    sync.Once

	resilienceMu sync.Mutex // one runtime switch at a time
	optMu        sync.Mutex // cfg.Options.Breakers changes at runtime

	stateMu    sync.Mutex // lab.json and what it records
	phase      Phase
	handedOver bool
	started    time.Time
}

// Instances expands the part table into the instances this lab runs.
func Instances(opts parts.Options) []Instance {
	var out []Instance
	for _, p := range parts.All() {
		for i := range p.Instances(opts) {
			out = append(out, Instance{Part: p, Index: i, Name: p.Instance(i)})
		}
	}
	return out
}

// Instance is one running copy of a part.
type Instance struct {
	Part  *parts.Part
	Index int
	Name  string
}

// Addr is where the instance can be reached, for status tables.
func (in Instance) Addr(p layout.Ports) string {
	if in.Part.Addr != nil {
		return in.Part.Addr(p, in.Index)
	}
	if in.Part.HTTP != nil {
		return in.Part.HTTP(p, in.Index)
	}
	return ""
}

// New prepares a supervisor; nothing runs until Run.
func New(cfg Config, log *slog.Logger) (*Supervisor, error) {
	s := &Supervisor{cfg: cfg, log: log, byName: map[string]*process{}, reg: prometheus.NewRegistry(), stopped: make(chan struct{}), mux: http.NewServeMux()}
	s.partUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricname.PartUp, Help: "Whether a lab part is running and healthy (1) or not (0)."}, []string{"part"})
	s.reg.MustRegister(s.partUp, machinecpu.NewCollector(), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	client := &http.Client{Timeout: time.Second}
	env := parts.Env{Ports: cfg.Ports, Dir: cfg.Dir, Options: cfg.Options}
	pidDir := cfg.Dir.Path("pids")
	if err := os.MkdirAll(pidDir, 0o755); err != nil {
		return nil, err
	}
	for _, in := range Instances(cfg.Options) {
		args := append([]string{"serve", in.Part.Name}, in.Part.Args(env, in.Index)...)
		admin := in.Part.AdminAddr(cfg.Options, cfg.Ports, in.Index)
		path := cfg.partExe()
		x, xargs, err := in.Part.Program(env, in.Index)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", in.Name, err)
		}
		if x != "" {
			path, args = x, xargs // another program: its own flags, no --admin-listen
		} else if admin != "" {
			args = append(args, "--admin-listen", admin)
		}
		args = append(args, cfg.Options.Extra[in.Part.Name]...) // every replica of the part
		p := &process{name: in.Name, variant: string(in.Part.Variant), addr: in.Addr(cfg.Ports), admin: admin, path: path, args: args,
			logPath: cfg.Dir.Log(in.Name), pidDir: pidDir, labDir: string(cfg.Dir), broker: in.Part.Start == 0}
		if in.Part.Setup != nil && in.Index == 0 {
			part := in.Part
			s.setups = append(s.setups, setup{part: part.Name, run: func(ctx context.Context) error { return part.Setup(ctx, env) }})
		}
		if in.Part.Ready != nil {
			part, i := in.Part, in.Index
			p.probe = func(ctx context.Context) error { return part.Ready(ctx, cfg.Ports, i) }
		} else {
			p.probe = httpProbe(client, admin, p)
		}
		s.add(p)
	}
	for _, x := range cfg.Extras {
		p := &process{name: x.Name, variant: x.Variant, addr: x.Addr, path: x.Path, args: x.Args, env: x.Env, logPath: cfg.Dir.Log(x.Name), pidDir: pidDir, labDir: string(cfg.Dir)}
		url := x.HealthURL
		p.probe = func(ctx context.Context) error {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s answered %d", url, resp.StatusCode)
			}
			return nil
		}
		s.add(p)
	}
	names := make([]string, 0, len(s.procs))
	for _, p := range s.procs {
		names = append(names, p.name)
	}
	s.edges = NewEdges(cfg.Ports, parts.EdgesFor(cfg.Options), names, log)
	for _, p := range s.procs {
		p.onStart, p.onExit, p.edgesOpen = s.edges.ServerStarted, s.edges.ServerExited, s.edges.Open
	}
	s.reg.MustRegister(s.edges.Collectors()...)
	return s, nil
}

func (s *Supervisor) add(p *process) {
	s.procs = append(s.procs, p)
	s.byName[p.name] = p
}

// OnShutdown registers fn to run before the parts are stopped.
func (s *Supervisor) OnShutdown(fn func(context.Context)) { s.hooks = append(s.hooks, fn) }

// Registry is where supervisor-level metrics (faults, parts) are registered.
func (s *Supervisor) Registry() *prometheus.Registry { return s.reg }

// Edges returns the edge fault proxies.
func (s *Supervisor) Edges() *Edges { return s.edges }

// Run starts the control API, writes lab.json (phase starting), starts the
// edge proxies and every process, then serves until ctx ends or a shutdown
// is requested; it stops everything and removes lab.json before returning.
// A shutdown requested while parts are still starting (`lab down`, or the
// `lab up` that started it gone before the handover) stops the start too.
func (s *Supervisor) Run(ctx context.Context, ready func()) error {
	ln, err := net.Listen("tcp", s.cfg.Ports.Control())
	if err != nil {
		return fmt.Errorf("control API: port %s is in use: %w", s.cfg.Ports.Control(), err)
	}
	srv := &http.Server{Handler: s.routes(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	defer s.edges.Close()
	s.started = time.Now()
	s.setPhase(PhaseStarting)
	defer s.removeState()
	if s.cfg.Handover != nil {
		go s.watchHandover(s.cfg.Handover)
	}
	// starting ends when the lab is asked to stop, so that a stop does not
	// wait for a broker that will never be ready.
	starting, endStart := context.WithCancel(ctx)
	defer endStart()
	go func() {
		select {
		case <-s.stopped:
			endStart()
		case <-starting.Done():
		}
	}()
	if err := s.startAll(starting); err != nil {
		s.setPhase(PhaseStopping)
		s.shutdown()
		if starting.Err() != nil {
			s.log.Info("stopped while starting", "why", err)
			return nil
		}
		return err
	}
	s.allStarted()
	if ready != nil {
		ready()
	}
	go s.probeLoop(ctx)
	select {
	case <-ctx.Done():
	case <-s.stopped:
	}
	s.setPhase(PhaseStopping)
	s.shutdown()
	return nil
}

// startAll starts the edge proxies and every process. Extras (Prometheus)
// and the brokers start first: Prometheus needs a few seconds to open its
// TSDB, and every Kafka client needs the brokers. Then the brokers' setup
// runs (a cluster's topics). All other parts start together once the
// brokers are ready; each waits for its own dependencies. It gives up as
// soon as ctx ends.
func (s *Supervisor) startAll(ctx context.Context) error {
	if err := s.edges.Start(); err != nil {
		return err
	}
	var rest, brokers []*process
	for _, p := range s.procs {
		if p.broker || p.name == parts.RegistryPart || p.path != s.cfg.partExe() {
			if err := startUnlessStopped(ctx, p); err != nil {
				return err
			}
			if p.broker {
				brokers = append(brokers, p)
			}
			continue
		}
		rest = append(rest, p)
	}
	for _, st := range s.setups {
		s.log.Info("setting up", "part", st.part)
		if err := st.run(ctx); err != nil {
			return fmt.Errorf("%s setup: %w", st.part, err)
		}
	}
	for _, b := range brokers {
		s.waitHealthy(ctx, b, BrokerReadyTimeout) // healthy includes its edges open: clients started next are not refused
	}
	for _, p := range rest {
		if err := startUnlessStopped(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

func startUnlessStopped(ctx context.Context, p *process) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s not started: %w", p.name, err)
	}
	return p.start()
}

func (s *Supervisor) waitHealthy(ctx context.Context, p *process, bound time.Duration) {
	deadline := time.Now().Add(bound)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		c, cancel := context.WithTimeout(ctx, time.Second)
		p.check(c)
		cancel()
		if st := p.status(); st.Health == HealthOK || st.Health == HealthExited {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// probeLoop checks every process twice a second until shutdown, and every
// probeStarting while one is still starting: `lab up` (and a part started
// again) waits for the supervisor to see a part healthy, so the slow cadence
// would add up to half a second to every start. A part still starting after
// fastProbesFor is probed at the slow cadence again.
func (s *Supervisor) probeLoop(ctx context.Context) {
	t := time.NewTicker(probeStarting)
	defer t.Stop()
	var last time.Time
	for {
		if s.anyStarting() || time.Since(last) >= probeEvery {
			last = time.Now()
			s.probeAll(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.stopped:
			return
		case <-t.C:
		}
	}
}

const (
	probeEvery    = 500 * time.Millisecond
	probeStarting = 50 * time.Millisecond
	fastProbesFor = 15 * time.Second
)

func (s *Supervisor) anyStarting() bool {
	for _, p := range s.procs {
		if st := p.status(); st.Health == HealthStarting && time.Since(st.Started) < fastProbesFor {
			return true
		}
	}
	return false
}

func (s *Supervisor) probeAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, p := range s.procs {
		wg.Go(func() {
			c, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			p.check(c)
			up := 0.0
			if p.status().Health == HealthOK {
				up = 1
			}
			s.partUp.WithLabelValues(p.name).Set(up)
		})
	}
	wg.Wait()
}

// requestStop ends Run.
func (s *Supervisor) requestStop() { s.once.Do(func() { close(s.stopped) }) }

// shutdown heals faults, then stops processes in reverse start order, in
// parallel within a bound, so nothing is left behind.
func (s *Supervisor) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, h := range s.hooks {
		h(ctx)
	}
	s.edges.HealAll()
	var wg sync.WaitGroup
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		if p.broker {
			continue // clients first, so they can leave their groups cleanly
		}
		wg.Add(1)
		go func() { defer wg.Done(); p.stop(StopGrace) }()
	}
	wg.Wait()
	for _, p := range s.procs {
		if p.broker {
			wg.Add(1)
			go func() { defer wg.Done(); p.stop(StopGrace) }()
		}
	}
	wg.Wait()
}

// BrokerReadyTimeout bounds waiting for a broker to become healthy before
// the other parts start (they would only wait for it themselves).
const BrokerReadyTimeout = 60 * time.Second

// setup is a part's Setup, run once after the brokers started.
type setup struct {
	part string
	run  func(ctx context.Context) error
}

// Statuses returns every process's status in start order.
func (s *Supervisor) Statuses() []PartStatus {
	out := make([]PartStatus, 0, len(s.procs))
	for _, p := range s.procs {
		out = append(out, p.status())
	}
	return out
}

// Process actions exposed on the control API.
var errUnknownPart = errors.New("unknown part")

func (s *Supervisor) lookup(name string) (*process, error) {
	if p, ok := s.byName[name]; ok {
		return p, nil
	}
	names := make([]string, 0, len(s.byName))
	for n := range s.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return nil, fmt.Errorf("%w %q (running parts: %v)", errUnknownPart, name, names)
}
