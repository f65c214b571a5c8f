package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/ratingslab/lab/lab/composeedges"
	"github.com/ratingslab/lab/lab/machinecpu"
	"github.com/ratingslab/lab/services/lib/metricname"
	"github.com/ratingslab/lab/services/lib/serve"
)

// The compose stack (compose/docker-compose.yml) runs every part as a
// container, so `lab up`'s supervisor does not run there. These commands
// are the two things the stack still needs from it: a healthcheck that
// works in a distroless image (no shell, no curl), and the supervisor's
// metrics (lab_part_up, lab_fault_active) for the dashboards.

func newComposeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "compose",
		Short: "Helpers the Docker Compose stack runs (healthchecks, the supervisor's metrics)",
		Long: `Commands the compose stack (compose/docker-compose.yml) runs inside its
containers, where 'lab up' does not run: Docker starts and stops the parts.

  lab compose health URL      a container healthcheck: exit 0 when URL answers 200
  lab compose watch ...       lab_part_up and lab_fault_active for Prometheus`,
		Annotations: map[string]string{annotPorts: portsOwn},
	}
	cmd.AddCommand(newComposeHealthCmd(g), newComposeWatchCmd(g))
	return cmd
}

func newComposeHealthCmd(g *globals) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:         "health URL",
		Short:       "Exit 0 when URL answers 200 (a healthcheck for images without curl)",
		Annotations: map[string]string{annotPorts: portsOwn},
		Args:        cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return probeHealth(ctx, args[0])
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Second, "give up after this long")
	return cmd
}

// probeHealth GETs url and wants 200; anything else is an error that says
// what answered.
func probeHealth(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("health %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health %s: HTTP %d: %s", url, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// watchPart is one --part NAME=URL.
type watchPart struct{ name, url string }

func newComposeWatchCmd(g *globals) *cobra.Command {
	var (
		listen, allow, proxies string
		partFlags              []string
		interval               time.Duration
		followEdges            bool
	)
	cmd := &cobra.Command{
		Use:   "watch --listen ADDR --part NAME=HEALTH_URL... [--toxiproxy URL]",
		Short: "Serve the supervisor's metrics for a stack the lab did not start",
		Long: `Probes each part's health URL every --interval and reads the toxics of the
Toxiproxy at --toxiproxy, and serves what 'lab up's supervisor serves for them
on --listen: /metrics with lab_part_up{part} (1: the health URL answered 200)
and lab_fault_active{fault,target} (one per toxic on an edge proxy: the
toxic's type, "partition" for a zero timeout or a proxy disabled by hand),
and /healthz. The compose stack runs it as its "lab" service.

With --toxiproxy it also keeps each proxy open only while something accepts
behind it (--follow-edges, on by default), as 'lab up's supervisor does: a
proxy in front of a stopped container refuses connections, as the
container's port would, and opens again once its upstream accepts (checked
every 250 ms). A proxy disabled by hand stays disabled.`,
		Annotations: map[string]string{annotPorts: portsOwn},
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if listen == "" {
				return errors.New("--listen: required (the address /metrics is served on, e.g. 0.0.0.0:7700)")
			}
			if len(partFlags) == 0 {
				return errors.New("--part: give at least one NAME=HEALTH_URL")
			}
			var ps []watchPart
			for _, f := range partFlags {
				name, url, ok := strings.Cut(f, "=")
				if !ok || name == "" || !strings.HasPrefix(url, "http") {
					return fmt.Errorf("--part %q: want NAME=http://host:port/healthz", f)
				}
				ps = append(ps, watchPart{name, url})
			}
			if interval <= 0 {
				return fmt.Errorf("--interval %v: must be positive", interval)
			}
			guard, err := serve.ParseAllow(strings.Split(allow, ","))
			if err != nil {
				return err
			}
			guard.What = "the compose watcher"
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)).With("part", "supervisor")
			w := newWatcher(ps, proxies, interval)
			if proxies != "" && followEdges {
				w.edges = composeedges.New(proxies, log)
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("--listen %s: %w", listen, err)
			}
			log.Info("watching the compose stack", "listen", ln.Addr().String(), "parts", len(ps), "toxiproxy", proxies, "follow_edges", w.edges != nil)
			return w.serve(cmd.Context(), ln, guard, log)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "`address` for /metrics and /healthz")
	cmd.Flags().StringVar(&allow, "allow", "", "who may call besides loopback: CIDRs and host names, as a part's --admin-allow")
	cmd.Flags().StringVar(&proxies, "toxiproxy", "", "Toxiproxy API `URL` whose toxics are the stack's faults (none: no fault metrics)")
	cmd.Flags().StringArrayVar(&partFlags, "part", nil, "NAME=HEALTH_URL of a part to probe (repeat)")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "how often to probe and read the toxics")
	cmd.Flags().BoolVar(&followEdges, "follow-edges", true, "close a proxy while nothing accepts behind it, open it when something does (with --toxiproxy)")
	return cmd
}

// watcher keeps the supervisor's gauges for a stack it does not run.
type watcher struct {
	parts    []watchPart
	proxies  string
	interval time.Duration
	reg      *prometheus.Registry
	partUp   *prometheus.GaugeVec
	faults   *prometheus.GaugeVec
	seen     map[[2]string]bool     // (fault, target) reported so far
	edges    *composeedges.Follower // nil: the proxies are not followed
}

func newWatcher(parts []watchPart, proxies string, interval time.Duration) *watcher {
	w := &watcher{parts: parts, proxies: proxies, interval: interval, reg: prometheus.NewRegistry(),
		seen: map[[2]string]bool{}}
	// The same names and help as the supervisor's (lab/supervisor, lab/faults).
	w.partUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricname.PartUp, Help: "Whether a lab part is running and healthy (1) or not (0)."}, []string{"part"})
	w.faults = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricname.FaultActive, Help: "Whether a fault is in force (1) or was healed (0), per fault and target; for Grafana annotations."}, []string{"fault", "target"})
	// The machine's CPU as the container sees it: the host's (or Docker's VM's) /proc/stat.
	w.reg.MustRegister(w.partUp, w.faults, machinecpu.NewCollector(), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return w
}

func (w *watcher) serve(ctx context.Context, ln net.Listener, guard serve.Guard, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", serve.MetricsHandler(w.reg, nil))
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(rw, `{"status":"ok"}`+"\n")
	})
	srv := &http.Server{Handler: guard.Wrap(mux), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	if w.edges != nil {
		go w.edges.Run(ctx)
	}
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	for {
		w.poll(ctx, log)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// poll probes every part and reads the toxics once.
func (w *watcher) poll(ctx context.Context, log *slog.Logger) {
	var wg sync.WaitGroup
	for _, p := range w.parts {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, w.interval)
			defer cancel()
			up := 0.0
			if probeHealth(pctx, p.url) == nil {
				up = 1
			}
			w.partUp.WithLabelValues(p.name).Set(up)
		})
	}
	wg.Wait()
	if w.proxies == "" {
		return
	}
	held := func(string) bool { return false }
	if w.edges != nil {
		held = w.edges.Held
	}
	active, err := toxiproxyFaults(w.proxies, held)
	if err != nil {
		// Unknown is not "no fault": drop the series rather than show zeros.
		w.faults.Reset()
		clear(w.seen)
		log.Warn("cannot read the toxics", "toxiproxy", w.proxies, "error", err.Error())
		return
	}
	// Healed faults stay at 0, as the supervisor's do.
	for f := range w.seen {
		w.faults.WithLabelValues(f[0], f[1]).Set(0)
	}
	for _, f := range active {
		w.seen[f] = true
		w.faults.WithLabelValues(f[0], f[1]).Set(1)
	}
}

// toxiproxyFaults lists (fault, edge) for every toxic and disabled proxy on
// the Toxiproxy at url, named as the lab's fault catalog names them: a
// toxic's type, and "partition" for a zero timeout (how the lab partitions
// an edge) or a proxy disabled by hand. A proxy held closed because
// nothing listens behind it (held) is not a fault.
func toxiproxyFaults(url string, held func(name string) bool) ([][2]string, error) {
	proxies, err := toxiproxy.NewClient(url).Proxies()
	if err != nil {
		return nil, err
	}
	var out [][2]string
	for name, p := range proxies {
		if !p.Enabled && !held(name) {
			out = append(out, [2]string{"partition", name})
		}
		for _, t := range p.ActiveToxics {
			fault := t.Type
			if t.Type == "timeout" {
				if v, ok := t.Attributes["timeout"].(float64); ok && v == 0 {
					fault = "partition"
				}
			}
			out = append(out, [2]string{fault, name})
		}
	}
	return out, nil
}
