package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/ratingslab/lab/lab/faults"
	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/lab/sampler"
	"github.com/ratingslab/lab/lab/supervisor"
)

// TestChaos runs the fault injector and the experiment runner on one real
// lab. The subtests run in order: the first proves a bad experiment injects
// nothing, so it must come before anything is injected.
func TestChaos(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	l := labtest.Start(t)
	c := &chaosLab{Lab: l, t: t, faults: faults.NewClient(l.Control())}

	t.Run("malformed experiment is rejected with nothing injected", c.malformedExperiment)
	t.Run("edge faults take effect through the edge and heal", c.edgeFaults)
	t.Run("process faults", c.processFaults)
	t.Run("service faults", c.serviceFaults)
	t.Run("kafka traffic cannot bypass its proxy", c.kafkaIsolation)
	t.Run("experiment end to end", c.experiment)
	t.Run("ctrl-c heals every fault", c.interrupt)
	t.Run("broker kill and heal", c.brokerKill) // last: the stream parts may take a while to recover
	t.Run("lab down heals first", c.downHeals)
}

type chaosLab struct {
	*labtest.Lab
	t      *testing.T
	faults *faults.Client
}

func (c *chaosLab) inject(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.Run(append([]string{"chaos", "inject"}, args...)...)
	if err != nil {
		t.Fatalf("lab chaos inject %v: %v\n%s", args, err, out)
	}
	id := strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
	if !strings.HasPrefix(id, "f-") {
		t.Fatalf("lab chaos inject %v printed %q, want a fault id first", args, out)
	}
	return id
}

// part and waitPart are labtest's, failing the subtest rather than the lab's test.
func (c *chaosLab) part(t *testing.T, name string) supervisor.PartStatus {
	t.Helper()
	ps, err := c.Control().Parts(context.Background())
	if err != nil {
		t.Fatalf("parts: %v", err)
	}
	for _, p := range ps {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no part %s", name)
	return supervisor.PartStatus{}
}

func (c *chaosLab) waitPart(t *testing.T, name string, h supervisor.Health, bound time.Duration) {
	t.Helper()
	labtest.Eventually(t, bound, name+" "+string(h), func() error {
		if p := c.part(t, name); p.Health != h {
			return fmt.Errorf("%s is %s (%s)", name, p.Health, p.Error)
		}
		return nil
	})
}

func (c *chaosLab) heal(t *testing.T, id string) {
	t.Helper()
	if out, err := c.Run("chaos", "heal", id); err != nil {
		t.Fatalf("lab chaos heal %s: %v\n%s", id, err, out)
	}
}

func (c *chaosLab) noActiveFaults(t *testing.T) {
	t.Helper()
	l, err := c.faults.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Active) > 0 {
		t.Fatalf("faults still active: %+v", l.Active)
	}
}

// edge returns the listen address of an edge's proxy.
func (c *chaosLab) edge(t *testing.T, name string) string {
	t.Helper()
	info, err := c.Control().Lab(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range info.Edges {
		if e.Name == name {
			return e.Listen
		}
	}
	t.Fatalf("no edge %s in %+v", name, info.Edges)
	return ""
}

// timedGet does one GET and returns its status and duration (status 0 on a
// transport error).
func timedGet(url string, timeout time.Duration) (int, time.Duration, error) {
	client := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	resp, err := client.Get(url)
	d := time.Since(start)
	if err != nil {
		return 0, d, err
	}
	resp.Body.Close()
	return resp.StatusCode, d, nil
}

func (c *chaosLab) malformedExperiment(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(`title: bad
load: {scenario: smoke, rate: 5, duration: 20s}
steady_state:
  probes:
    - probe: success_rate
      min: 0.99
method:
  - fault: movies-outage
    at: 5s
    for: 3s
  - fault: kill
    at: soon
    for: 3s
    target: movies-rpc
`), 0o644)
	wrongTarget := filepath.Join(dir, "wrong.yaml")
	os.WriteFile(wrongTarget, []byte(`title: wrong
load: {scenario: smoke, rate: 5, duration: 20s}
steady_state:
  probes:
    - probe: success_rate
      min: 0.99
method:
  - fault: movies-outage
    at: 5s
    for: 3s
  - fault: latency
    at: 9s
    for: 3s
    targets: {rpc: "webserver-rpc->movies-rpc"}
`), 0o644)
	for file, want := range map[string]string{
		bad:         bad + `:12: method[1].at: want a duration such as 10s or 1m30s, got "soon"`,
		wrongTarget: wrongTarget + `:14: method[1].targets.rpc: target "webserver-rpc->movies-rpc": latency applies to edges:`,
	} {
		out, err := c.Run("chaos", "run", file)
		if err == nil || !strings.Contains(out, want) {
			t.Fatalf("lab chaos run %s: err %v, output:\n%s\nwant it to contain %q", file, err, out, want)
		}
	}
	l, err := c.faults.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Active)+len(l.History) != 0 {
		t.Fatalf("a rejected experiment injected something: %+v", l)
	}
}

func (c *chaosLab) edgeFaults(t *testing.T) {
	const edge = "ratings-rpc->movies-rpc"
	through := "http://" + c.edge(t, edge) + "/movies/1" // movies-rpc's API, through its edge proxy
	fast := func(t *testing.T) {
		t.Helper()
		labtest.Eventually(t, 5*time.Second, "the edge to answer fast", func() error {
			code, d, err := timedGet(through, 2*time.Second)
			if err != nil || code != http.StatusOK || d > 150*time.Millisecond {
				return fmt.Errorf("GET through the edge: %d in %v (%v)", code, d, err)
			}
			return nil
		})
	}
	fast(t)

	// latency is measured through the edge, and in the variant's own API.
	id := c.inject(t, "latency", "--target", edge, "--latency", "300ms")
	// Toxiproxy's own API (what toxiproxy-cli and its client libraries
	// use) shows every edge, and the lab's toxic on this one.
	proxies, err := toxiclient.NewClient(c.Ports.Toxiproxy()).Proxies()
	if err != nil {
		t.Fatalf("toxiproxy API on %s: %v", c.Ports.Toxiproxy(), err)
	}
	for _, name := range []string{"webserver-rpc->ratings-rpc", edge, "webserver-stream->broker", "ratings-stream->broker", "movies-connect->broker"} {
		if proxies[name] == nil {
			t.Fatalf("toxiproxy API lists %d proxies, not %s", len(proxies), name)
		}
	}
	if ts, err := proxies[edge].Toxics(); err != nil || len(ts) != 1 || ts[0].Name != "lab-"+id+"-downstream" || ts[0].Attributes["latency"] != float64(300) {
		t.Fatalf("toxics on %s seen through the toxiproxy API: %+v (%v)", edge, ts, err)
	}
	if code, d, err := timedGet(through, 3*time.Second); err != nil || code != 200 || d < 300*time.Millisecond {
		t.Fatalf("latency 300ms: %d in %v (%v)", code, d, err)
	}
	if code, d, err := timedGet("http://"+c.Ports.WebserverRPC()+"/api/movies/1", 5*time.Second); err != nil || code != 200 || d < 300*time.Millisecond {
		t.Fatalf("webserver-rpc GET /api/movies/1 with 300ms on %s: %d in %v (%v)", edge, code, d, err)
	}
	c.heal(t, id)
	fast(t)

	for _, tc := range []struct {
		fault string
		args  []string
		check func(code int, d time.Duration, err error) error
	}{
		{"partition", nil, func(code int, d time.Duration, err error) error {
			if !isTimeout(err) {
				return fmt.Errorf("want a timeout, got %d in %v (%v)", code, d, err)
			}
			return nil
		}},
		{"timeout", []string{"--timeout", "100ms"}, func(code int, d time.Duration, err error) error {
			if err == nil || isTimeout(err) {
				return fmt.Errorf("want the connection closed after 100ms, got %d in %v (%v)", code, d, err)
			}
			return nil
		}},
		{"reset_peer", nil, func(code int, d time.Duration, err error) error {
			if err == nil {
				return fmt.Errorf("want the connection reset, got %d", code)
			}
			return nil
		}},
		{"limit_data", []string{"--bytes", "10"}, func(code int, d time.Duration, err error) error {
			if err == nil {
				return fmt.Errorf("want the answer cut after 10 bytes, got %d", code)
			}
			return nil
		}},
		{"bandwidth", []string{"--rate", "1"}, func(code int, d time.Duration, err error) error {
			// /healthz answers a few hundred bytes with headers: at 1 KB/s
			// that takes a noticeable part of a second.
			if err != nil || d < 100*time.Millisecond {
				return fmt.Errorf("want a slow answer, got %d in %v (%v)", code, d, err)
			}
			return nil
		}},
		{"slow_close", []string{"--delay", "300ms"}, func(code int, d time.Duration, err error) error {
			if err != nil || code != 200 {
				return fmt.Errorf("slow_close must not break requests: %d (%v)", code, err)
			}
			return nil
		}},
	} {
		id := c.inject(t, append([]string{tc.fault, "--target", edge}, tc.args...)...)
		code, d, err := timedGet(through, 700*time.Millisecond)
		if e := tc.check(code, d, err); e != nil {
			t.Errorf("%s: %v", tc.fault, e)
		}
		c.heal(t, id)
		fast(t)
	}
	c.noActiveFaults(t)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (c *chaosLab) processFaults(t *testing.T) {
	// kill: the part is gone (no process, its port refuses), and heal starts it.
	before := c.part(t, "movies-rpc")
	id := c.inject(t, "kill", "--target", "movies-rpc")
	if p := c.part(t, "movies-rpc"); p.PID != 0 || p.Health == supervisor.HealthOK {
		t.Fatalf("killed movies-rpc: %+v", p)
	}
	if syscall.Kill(before.PID, 0) == nil && !zombie(before.PID) {
		t.Fatalf("process %d survived its kill", before.PID)
	}
	if conn, err := net.DialTimeout("tcp", c.Ports.MoviesRPC(), time.Second); err == nil {
		conn.Close()
		t.Fatal("a killed movies-rpc still accepts connections")
	}
	// Its callers see what a dead process's port does: the edge in front
	// of it refuses too, rather than accepting and closing at once.
	edge := parts.EdgeFrom("ratings-rpc", "movies-rpc").Listen(c.Ports)
	if conn, err := net.DialTimeout("tcp", edge, time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		if conn != nil {
			conn.Close()
		}
		t.Fatalf("the edge %s in front of a killed movies-rpc: %v, want connection refused", edge, err)
	}
	// Closed by the lab, that edge is no fault set through Toxiproxy's API.
	if l, err := c.faults.List(context.Background()); err != nil || len(l.External) > 0 {
		t.Fatalf("with movies-rpc killed, faults the lab did not inject: %+v (%v), want none", l.External, err)
	}
	c.heal(t, id)
	c.waitPart(t, "movies-rpc", supervisor.HealthOK, 20*time.Second)
	if p := c.part(t, "movies-rpc"); p.PID == before.PID {
		t.Fatalf("movies-rpc came back with the same pid %d", p.PID)
	}
	labtest.Eventually(t, 5*time.Second, "the edge in front of movies-rpc to open again", func() error {
		_, _, err := timedGet("http://"+edge+"/healthz", time.Second)
		return err
	})

	// pause: the process exists and answers nothing; heal continues it.
	id = c.inject(t, "pause", "--target", "ratings-rpc")
	if p := c.part(t, "ratings-rpc"); p.Health != supervisor.HealthPaused || p.PID == 0 {
		t.Fatalf("paused ratings-rpc: %+v", p)
	}
	if _, _, err := timedGet("http://"+c.Ports.AdminRatingsRPC()+"/healthz", 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("a paused part answered: %v", err)
	}
	c.heal(t, id)
	c.waitPart(t, "ratings-rpc", supervisor.HealthOK, 20*time.Second)

	// restart: a new process, which gets the part's in-service faults set
	// again (a fresh process starts without them).
	before = c.part(t, "webserver-rpc")
	errs := c.inject(t, "error_rate", "--target", "webserver-rpc", "--rate", "0.25")
	c.inject(t, "restart", "--target", "webserver-rpc")
	c.waitPart(t, "webserver-rpc", supervisor.HealthOK, 20*time.Second)
	if p := c.part(t, "webserver-rpc"); p.PID == before.PID {
		t.Fatal("restart kept the same process")
	}
	labtest.Eventually(t, 10*time.Second, "the error rate to be set again on the new process", func() error {
		var spec struct {
			ErrorRate float64 `json:"error_rate"`
		}
		if _, err := labtest.HTTPJSON(http.MethodGet, "http://"+c.Ports.AdminWebserverRPC()+"/admin/faults", nil, &spec); err != nil || spec.ErrorRate != 0.25 {
			return fmt.Errorf("error_rate %v (%v)", spec.ErrorRate, err)
		}
		return nil
	})
	c.heal(t, errs)

	c.noActiveFaults(t)
}

// The broker is a part like any other: killed, it is gone; its --for runs
// out and it is back (its data survives: see the foundation test).
func (c *chaosLab) brokerKill(t *testing.T) {
	id := c.inject(t, "kill", "--target", "broker", "--for", "2s")
	if p := c.part(t, "broker"); p.PID != 0 {
		t.Fatalf("killed broker: %+v", p)
	}
	if conn, err := net.DialTimeout("tcp", c.Ports.Broker(), time.Second); err == nil {
		conn.Close()
		t.Fatal("a killed broker still accepts connections")
	}
	labtest.Eventually(t, 10*time.Second, "the broker's kill to heal by itself", func() error {
		f, err := c.faults.Get(context.Background(), id)
		if err != nil || f.State != faults.StateHealed || f.HealedBy != faults.HealedByTimer {
			return fmt.Errorf("%+v %v", f, err)
		}
		return nil
	})
	c.waitPart(t, "broker", supervisor.HealthOK, 20*time.Second)
	c.noActiveFaults(t)
}

// metric reads the sum of a counter's (or gauge's) series matching labels
// from a part's /metrics (addr: its admin listener).
func metric(t testing.TB, addr, name string, labels map[string]string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	fams, err := sampler.ScrapeURL(ctx, http.DefaultClient, "http://"+addr+"/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", addr, err)
	}
	var sum float64
	f := fams[name]
	if f == nil {
		return 0
	}
next:
	for _, m := range f.GetMetric() {
		for k, v := range labels {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.GetCounter() != nil:
			sum += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			sum += m.GetGauge().GetValue()
		case m.GetUntyped() != nil:
			sum += m.GetUntyped().GetValue()
		case m.GetHistogram() != nil: // how many observations
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

func (c *chaosLab) serviceFaults(t *testing.T) {
	// error_rate: close to the fraction asked for.
	id := c.inject(t, "error_rate", "--target", "webserver-rpc", "--rate", "0.3")
	const n = 300
	failed := 0
	for i := range n {
		code, _, err := timedGet("http://"+c.Ports.WebserverRPC()+"/api/movies/"+strconv.Itoa(i%50+1), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if code == http.StatusInternalServerError {
			failed++
		}
	}
	// 300 draws at 0.3: one standard deviation is 0.026; 0.1 is almost four.
	if got := float64(failed) / n; math.Abs(got-0.3) > 0.1 {
		t.Fatalf("error_rate 0.3: %.3f of requests failed", got)
	}
	c.heal(t, id)
	if code, _, _ := timedGet("http://"+c.Ports.WebserverRPC()+"/api/movies/1", 5*time.Second); code != 200 {
		t.Fatalf("after heal: %d", code)
	}

	// handler_latency and slow_db on movies-rpc, measured on its own API.
	movie := "http://" + c.Ports.MoviesRPC() + "/movies/1"
	for _, f := range [][]string{{"handler_latency", "--latency", "250ms"}, {"slow_db", "--delay", "250ms"}} {
		id := c.inject(t, append([]string{f[0], "--target", "movies-rpc"}, f[1:]...)...)
		if code, d, err := timedGet(movie, 5*time.Second); err != nil || code != 200 || d < 250*time.Millisecond {
			t.Fatalf("%s 250ms: %d in %v (%v)", f[0], code, d, err)
		}
		c.heal(t, id)
		if code, d, err := timedGet(movie, 5*time.Second); err != nil || code != 200 || d > 200*time.Millisecond {
			t.Fatalf("after healing %s: %d in %v (%v)", f[0], code, d, err)
		}
	}

	// slow_db on movies-connect and throttle on ratings-stream: the parts
	// report them on their admin endpoints, and forget them on heal.
	for _, f := range []struct{ part, addr, path, flag, want string }{
		{"movies-connect", c.Ports.AdminMoviesConnect(), "/admin/slow-db", "--delay", "300ms"},
		{"ratings-stream", c.Ports.AdminRatingsStream(0), "/admin/throttle", "--delay", "300ms"},
	} {
		fault := map[string]string{"/admin/slow-db": "slow_db", "/admin/throttle": "throttle"}[f.path]
		id := c.inject(t, fault, "--target", f.part, f.flag, f.want)
		var got map[string]string
		if _, err := labtest.HTTPJSON(http.MethodGet, "http://"+f.addr+f.path, nil, &got); err != nil || got["delay"] != f.want {
			t.Fatalf("%s %s = %v (%v), want delay %s", f.part, f.path, got, err, f.want)
		}
		c.heal(t, id)
		if _, err := labtest.HTTPJSON(http.MethodGet, "http://"+f.addr+f.path, nil, &got); err != nil || got["delay"] != "0s" {
			t.Fatalf("%s %s after heal = %v (%v)", f.part, f.path, got, err)
		}
	}

	// poison: the records reach the DLQ, and the processor keeps counting.
	stream := c.Ports.AdminRatingsStream(0)
	dlqBefore := metric(t, stream, "lab_dlq_messages_total", nil)
	c.inject(t, "poison", "--target", "ratings", "--count", "4", "--kind", "rating-range")
	labtest.Eventually(t, 20*time.Second, "4 poison records in the DLQ", func() error {
		if got := metric(t, stream, "lab_dlq_messages_total", nil) - dlqBefore; got < 4 {
			return fmt.Errorf("%v sent to the DLQ", got)
		}
		return nil
	})
	base := "http://" + c.Ports.WebserverStream()
	countBefore := streamCount(t, base, 7)
	if code, _ := postRating(t, base, 7, 8, "after-poison-1"); code != http.StatusAccepted {
		t.Fatalf("POST after poison: %d", code)
	}
	labtest.Eventually(t, 20*time.Second, "a rating after the poison to be counted", func() error {
		if got := streamCount(t, base, 7); got != countBefore+1 {
			return fmt.Errorf("count %d, want %d", got, countBefore+1)
		}
		return nil
	})
	c.noActiveFaults(t)
}

func streamCount(t *testing.T, base string, movie int64) int64 {
	t.Helper()
	var m struct {
		Count int64 `json:"count"`
	}
	code, err := labtest.HTTPJSON(http.MethodGet, fmt.Sprintf("%s/api/movies/%d", base, movie), nil, &m)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET movie %d: %d %v", movie, code, err)
	}
	return m.Count
}

// remotePorts counts a process's TCP connections by remote port, from
// /proc (its socket inodes matched against the kernel's table).
func remotePorts(t *testing.T, pid int) map[int]int {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("list fds of %d: %v", pid, err)
	}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	out := map[int]int{}
	for _, table := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || !inodes[f[9]] || f[3] != "01" { // 01: ESTABLISHED
				continue
			}
			_, portHex, _ := strings.Cut(f[2], ":")
			port, _ := strconv.ParseInt(portHex, 16, 32)
			out[int(port)]++
		}
	}
	return out
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// Every Kafka client reaches the broker only through its own edge proxy,
// even after metadata discovery: a partition of ratings-stream->broker stops
// ratings-stream and nothing else, and healing it lets the backlog through.
func (c *chaosLab) kafkaIsolation(t *testing.T) {
	broker := portOf(t, c.Ports.Broker())
	for _, p := range []string{"webserver-stream", "ratings-stream", "movies-connect"} {
		edge := portOf(t, c.edge(t, p+"->broker"))
		ports := remotePorts(t, c.part(t, p).PID)
		if ports[broker] > 0 || ports[edge] == 0 {
			t.Fatalf("%s's connections by remote port: %v; want some to its edge proxy %d and none to the broker %d", p, ports, edge, broker)
		}
	}

	base := "http://" + c.Ports.WebserverStream()
	rpcBase := "http://" + c.Ports.WebserverRPC()
	stream := c.Ports.AdminRatingsStream(0)
	web := c.Ports.AdminWebserverStream()
	const movie = 11
	countBefore := streamCount(t, base, movie)
	id := c.inject(t, "partition", "--target", "ratings-stream->broker")
	consumed := metric(t, stream, "lab_kafka_consumed_messages_total", map[string]string{"topic": "ratings"})
	produced := metric(t, web, "lab_kafka_produced_messages_total", map[string]string{"topic": "ratings"})

	// The rest of the log variant, and the RPC variant, carry on.
	for i := range 5 {
		if code, _ := postRating(t, base, movie, 6, fmt.Sprintf("isolation-%d", i)); code != http.StatusAccepted {
			t.Fatalf("webserver-stream POST during the partition: %d, want 202 (its own edge is fine)", code)
		}
	}
	if code, _ := postRating(t, rpcBase, movie, 6, "isolation-rpc"); code != http.StatusCreated {
		t.Fatalf("webserver-rpc POST during the partition: %d", code)
	}
	labtest.Eventually(t, 10*time.Second, "webserver-stream to produce the 5 ratings", func() error {
		if got := metric(t, web, "lab_kafka_produced_messages_total", map[string]string{"topic": "ratings"}) - produced; got < 5 {
			return fmt.Errorf("%v produced", got)
		}
		return nil
	})
	// Observe for 2 s that ratings-stream consumes nothing and the view
	// does not move: absence can only be shown over a bounded window.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if got := metric(t, stream, "lab_kafka_consumed_messages_total", map[string]string{"topic": "ratings"}); got != consumed {
			t.Fatalf("ratings-stream consumed %v ratings through a partitioned edge", got-consumed)
		}
		if got := streamCount(t, base, movie); got != countBefore {
			t.Fatalf("the view moved during the partition: %d → %d", countBefore, got)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, p := range []string{"broker", "webserver-stream", "movies-connect", "webserver-rpc", "ratings-rpc", "movies-rpc"} {
		if st := c.part(t, p); st.Health != supervisor.HealthOK {
			t.Errorf("%s is %s during a partition of ratings-stream->broker", p, st.Health)
		}
	}

	c.heal(t, id)
	labtest.Eventually(t, 40*time.Second, "the backlog to be counted after the heal", func() error {
		if got := streamCount(t, base, movie); got != countBefore+5 {
			return fmt.Errorf("count %d, want %d", got, countBefore+5)
		}
		return nil
	})
	c.noActiveFaults(t)
}

const shortExperiment = `title: Short ratings latency
variants: [rpc, stream]
load:
  scenario: smoke
  rate: 20
  duration: 16s
steady_state:
  warmup: 2s
  window: 3s
  recovery: 4s
  probes:
    - probe: success_rate
      min: 0.95
      why: a 16 s run on a machine shared by parallel tests
    - probe: p99_latency
      max: 2s
      why: a 16 s run on a machine shared by parallel tests
    - probe: consumer_lag
      max: 1000
      why: a 16 s run on a machine shared by parallel tests
    - probe: view_gap
      max: 1000
      why: a 16 s run on a machine shared by parallel tests
    - probe: lost_writes
method:
  - fault: ratings-latency
    at: 4s
    for: 6s
    params:
      latency: 200ms
drain: 20s
`

func (c *chaosLab) experiment(t *testing.T) {
	file := filepath.Join(t.TempDir(), "short.yaml")
	os.WriteFile(file, []byte(shortExperiment), 0o644)
	out, err := c.Run("chaos", "run", file)
	m := regexp.MustCompile(`Journal: (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("lab chaos run: no journal path in the output (%v):\n%s", err, out)
	}
	j, jerr := journal.Read(m[1])
	if jerr != nil {
		t.Fatal(jerr)
	}
	if !strings.Contains(out, "VERDICT") {
		t.Errorf("no verdict table:\n%s", out)
	}
	held := j.Verdict["rpc"] && j.Verdict["stream"]
	if (err == nil) != held {
		t.Errorf("exit status %v with verdict %v: exit 0 only when every hypothesis held", err, j.Verdict)
	}
	if j.Kind != journal.KindExperiment || len(j.Variants) != 2 || j.Error != "" || len(j.Definition) == 0 || j.Seed == 0 && j.Settings["scenario"] != "smoke" {
		t.Fatalf("journal header: kind %s variants %v error %q", j.Kind, j.Variants, j.Error)
	}
	if _, ok := j.Verdict["rpc"]; !ok {
		t.Error("no verdict for rpc")
	}
	if _, ok := j.Verdict["stream"]; !ok {
		t.Error("no verdict for stream")
	}
	// The fault timeline as applied: both variants, on schedule.
	seen := map[string]bool{}
	for _, f := range j.Faults {
		seen[f.Variant] = true
		if f.Error != "" {
			t.Errorf("fault %s/%s: %s", f.ID, f.Variant, f.Error)
		}
		inj := f.InjectedAt.Sub(j.Started) - f.PlannedAt.D()
		heal := f.HealedAt.Sub(j.Started) - (f.PlannedAt.D() + f.PlannedFor.D())
		if inj < 0 || inj > 100*time.Millisecond || heal < 0 || heal > 100*time.Millisecond {
			t.Errorf("fault %s/%s: injected %v and healed %v off schedule (want within 100ms)", f.ID, f.Variant, inj, heal)
		}
	}
	if !seen["rpc"] || !seen["stream"] {
		t.Errorf("fault timeline covers %v, want both variants", seen)
	}
	perVariant, machine := map[string]int{}, map[string]int{}
	for _, s := range j.Samples {
		perVariant[s.Variant]++
		if busy, ok := s.Get(journal.SeriesMachineCPUBusy); ok {
			machine[s.Variant]++
			if busy < 0 || busy > 1 {
				t.Errorf("machine CPU busy %v at %v: want a share in [0, 1]", busy, s.At)
			}
		}
	}
	if perVariant["rpc"] < 14 || perVariant["stream"] < 14 {
		t.Errorf("samples per variant: %v, want one a second", perVariant)
	}
	// The machine both variants share, from /proc/stat, in every sample but
	// the first (a share needs two readings).
	for v, n := range perVariant {
		if machine[v] < n-1 {
			t.Errorf("%s: machine CPU in %d of %d samples", v, machine[v], n)
		}
	}
	phases := map[string]int{}
	for _, p := range j.Phases {
		phases[p.Variant+"/"+p.Name] = len(p.Probes)
	}
	for _, v := range []string{"rpc", "stream"} {
		for _, ph := range []string{"before", "during", "after"} {
			if phases[v+"/"+ph] == 0 {
				t.Errorf("no probes in phase %s for %s", ph, v)
			}
		}
	}
	if len(j.Audit) == 0 {
		t.Error("no audit in the journal")
	}
	c.reportHasEveryChart(t, out)
	c.noActiveFaults(t)
}

// reportHasEveryChart checks the report `lab chaos run` rendered: the HTML and
// Markdown exist, and every chart the HTML shows is a non-empty PNG.
func (c *chaosLab) reportHasEveryChart(t *testing.T, out string) {
	t.Helper()
	m := regexp.MustCompile(`Report: (\S+\.html)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("lab chaos run did not print where the report is:\n%s", out)
	}
	html, err := os.ReadFile(m[1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(m[1]), "report.md")); err != nil {
		t.Errorf("no Markdown report: %v", err)
	}
	charts, _ := filepath.Glob(filepath.Join(filepath.Dir(m[1]), "charts", "*.png"))
	if len(charts) < 6 {
		t.Fatalf("report has %d charts, want one per signal (rate, success, latency, breaker, lag, freshness)", len(charts))
	}
	for _, ch := range charts {
		f, err := os.Open(ch)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Errorf("chart %s: %v", ch, err)
			continue
		}
		// Lines, not just colours: a grid, axes and a legend have several.
		if cols, width := labtest.ColouredColumns(img), img.Bounds().Dx(); cols < width/4 {
			t.Errorf("chart %s draws no series: lines in %d of %d pixel columns", filepath.Base(ch), cols, width)
		}
	}
	if n := strings.Count(string(html), "data:image/png;base64,"); n < len(charts) {
		t.Errorf("the HTML embeds %d charts, want all %d (self-contained)", n, len(charts))
	}
}

// Ctrl-C in the middle of a run heals every fault it injected: a killed
// part comes back, the latency is gone, and the journal says so.
func (c *chaosLab) interrupt(t *testing.T) {
	file := filepath.Join(t.TempDir(), "long.yaml")
	os.WriteFile(file, []byte(`title: Interrupted
load: {scenario: smoke, rate: 10, duration: 60s}
steady_state:
  warmup: 1s
  probes:
    - probe: success_rate
      min: 0.5
      why: the run is interrupted; the verdict does not matter
method:
  - fault: ratings-crash
    at: 2s
    for: 40s
  - fault: movies-latency
    at: 2s
    for: 40s
`), 0o644)
	var out bytes.Buffer
	cmd := exec.Command(c.Bin, "--dir", string(c.Dir), "--port-base", strconv.Itoa(c.Ports.Base), "chaos", "run", file)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	}()
	labtest.Eventually(t, 20*time.Second, "the run's 4 faults to be active", func() error {
		l, err := c.faults.List(context.Background())
		if err != nil || len(l.Active) < 4 {
			return fmt.Errorf("%d active (%v)", len(l.Active), err)
		}
		return nil
	})
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err == nil {
			t.Fatalf("an interrupted run exited 0:\n%s", out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("lab chaos run did not exit within 30s of Ctrl-C:\n%s", out.String())
	}
	c.noActiveFaults(t)
	for _, p := range []string{"ratings-rpc", "ratings-stream"} {
		c.waitPart(t, p, supervisor.HealthOK, 30*time.Second)
	}
	if !strings.Contains(out.String(), "interrupted") {
		t.Errorf("the output does not say the run was interrupted:\n%s", out.String())
	}
	if m := regexp.MustCompile(`Journal: (\S+)`).FindStringSubmatch(out.String()); m != nil {
		if j, err := journal.Read(m[1]); err != nil || !strings.Contains(j.Error, "interrupted") {
			t.Errorf("journal of the interrupted run: error %q (%v)", j.Error, err)
		}
	} else {
		t.Errorf("no journal written for the interrupted run:\n%s", out.String())
	}
}

// `lab down` heals every fault before it stops the parts.
func (c *chaosLab) downHeals(t *testing.T) {
	lat := c.inject(t, "latency", "--target", "webserver-rpc->ratings-rpc")
	pause := c.inject(t, "pause", "--target", "movies-rpc")
	if out := c.MustRun("status"); !strings.Contains(out, lat+" latency on webserver-rpc->ratings-rpc") || !strings.Contains(out, pause+" pause on movies-rpc") {
		t.Errorf("lab status does not list the active faults:\n%s", out)
	}
	resp, err := http.Get("http://" + c.Ports.Control() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	resp.Body.Close()
	if !strings.Contains(b.String(), `lab_fault_active{fault="pause",target="movies-rpc"} 1`) {
		t.Errorf("lab_fault_active does not show the pause")
	}
	c.MustRun("down")
	logb, _ := os.ReadFile(c.Dir.SupervisorLog())
	for _, id := range []string{lat, pause} {
		if !regexp.MustCompile(`fault healed.*id=` + id + ` .*by=shutdown`).Match(logb) {
			t.Errorf("the supervisor log does not show %s healed at shutdown:\n%s", id, logb)
		}
	}
}
