package faults

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// upstream is a tiny TCP server: for each line "N" it writes N bytes of 'x';
// for "N close" it writes them and closes the connection. It counts the
// requests it received, so a test can tell whether requests got through.
type upstream struct {
	addr     string
	received atomic.Int64
}

func startUpstream(t testing.TB) *upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{addr: ln.Addr().String()}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go u.serve(c)
		}
	}()
	return u
}

func (u *upstream) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		u.received.Add(1)
		fields := strings.Fields(line)
		n, _ := strconv.Atoi(fields[0])
		if _, err := c.Write([]byte(strings.Repeat("x", n))); err != nil {
			return
		}
		if len(fields) > 1 && fields[1] == "close" {
			return
		}
	}
}

// labEdges is a real embedded Toxiproxy with one edge proxy in front of an
// upstream, and an injector over it.
type labEdges struct {
	server *toxiproxy.ApiServer
	proxy  *toxiproxy.Proxy
	up     *upstream
	inj    *Injector
	reg    *prometheus.Registry
}

const testEdge = "client->server"

func startEdges(t testing.TB) *labEdges {
	t.Helper()
	quietToxics()
	up := startUpstream(t)
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(server, testEdge, "127.0.0.1:0", up.addr)
	if err := server.Collection.Add(p, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Collection.Clear() })
	reg := prometheus.NewRegistry()
	inj := New(Config{Proxies: server, Targets: Targets{Edges: []string{testEdge}, Variants: map[string]string{testEdge: "rpc"}}, Registerer: reg})
	return &labEdges{server: server, proxy: p, up: up, inj: inj, reg: reg}
}

// exchange opens a connection through the edge, asks for n bytes (and the
// close when closeAfter), and reads until it has them or EOF. It returns
// how long that took, how many bytes came, and the read error (nil at n
// bytes, io.EOF when the connection closed early).
func (e *labEdges) exchange(n int, closeAfter bool, bound time.Duration) (time.Duration, int, error) {
	c, err := net.DialTimeout("tcp", e.proxy.Listen, time.Second)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	start := time.Now()
	_ = c.SetDeadline(start.Add(bound))
	line := strconv.Itoa(n)
	if closeAfter {
		line += " close"
	}
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return time.Since(start), 0, err
	}
	want := n
	if closeAfter {
		want = n + 1 // read on to the EOF
	}
	buf := make([]byte, want)
	got, err := io.ReadFull(c, buf)
	if closeAfter && errors.Is(err, io.ErrUnexpectedEOF) && got == n {
		err = nil
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return time.Since(start), got, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}

// Each edge fault takes effect on a new connection through the edge, and
// after healing the edge carries traffic normally again with no toxic left.
func TestEdgeFaultsTakeEffectAndHeal(t *testing.T) {
	e := startEdges(t)
	ctx := context.Background()
	healthy := func(t *testing.T) {
		t.Helper()
		d, got, err := e.exchange(100, false, 2*time.Second)
		if err != nil || got != 100 || d > 150*time.Millisecond {
			t.Fatalf("healthy edge: %d bytes in %v, err %v", got, d, err)
		}
		if ts := e.proxy.Toxics.GetToxicArray(); len(ts) != 0 {
			t.Fatalf("toxics left after heal: %d", len(ts))
		}
	}
	cases := []struct {
		fault  string
		params ParamValues
		check  func(t *testing.T)
	}{
		{"latency", ParamValues{"latency": "300ms"}, func(t *testing.T) {
			d, got, err := e.exchange(100, false, 3*time.Second)
			if err != nil || got != 100 || d < 300*time.Millisecond {
				t.Fatalf("latency 300ms: %d bytes in %v (err %v), want them after at least 300ms", got, d, err)
			}
		}},
		{"timeout", nil, func(t *testing.T) { // blackhole downstream: the request arrives, the answer never does
			before := e.up.received.Load()
			_, got, err := e.exchange(100, false, 300*time.Millisecond)
			if !isTimeout(err) || got != 0 {
				t.Fatalf("blackhole: got %d bytes, err %v; want a read timeout", got, err)
			}
			if e.up.received.Load() != before+1 {
				t.Fatal("blackhole downstream: the request should still reach the upstream")
			}
		}},
		{"timeout", ParamValues{"timeout": "200ms"}, func(t *testing.T) {
			d, _, err := e.exchange(100, false, 3*time.Second)
			if !errors.Is(err, io.EOF) || d < 200*time.Millisecond || d > 2*time.Second {
				t.Fatalf("timeout 200ms: err %v after %v; want the connection closed after about 200ms", err, d)
			}
		}},
		{"reset_peer", nil, func(t *testing.T) {
			_, got, err := e.exchange(100, false, 2*time.Second)
			if err == nil || got == 100 || isTimeout(err) {
				t.Fatalf("reset_peer: got %d bytes, err %v; want the connection reset", got, err)
			}
		}},
		{"bandwidth", ParamValues{"rate": "4"}, func(t *testing.T) { // 4 KB/s
			d, got, err := e.exchange(2048, false, 5*time.Second)
			if err != nil || got != 2048 || d < 350*time.Millisecond {
				t.Fatalf("bandwidth 4KB/s: %d bytes in %v (err %v), want 2 KB to take about 500ms", got, d, err)
			}
		}},
		{"slow_close", ParamValues{"delay": "400ms"}, func(t *testing.T) {
			d, got, err := e.exchange(10, true, 3*time.Second)
			if err != nil || got != 10 || d < 400*time.Millisecond {
				t.Fatalf("slow_close 400ms: close seen after %v (%d bytes, err %v), want at least 400ms", d, got, err)
			}
		}},
		{"limit_data", ParamValues{"bytes": "100"}, func(t *testing.T) {
			_, got, err := e.exchange(1000, false, 2*time.Second)
			if !errors.Is(err, io.EOF) || got > 100 {
				t.Fatalf("limit_data 100: got %d bytes, err %v; want at most 100 bytes then EOF", got, err)
			}
		}},
		{"partition", nil, func(t *testing.T) { // nothing gets through either way
			before := e.up.received.Load()
			_, got, err := e.exchange(100, false, 300*time.Millisecond)
			if !isTimeout(err) || got != 0 {
				t.Fatalf("partition: got %d bytes, err %v; want a read timeout", got, err)
			}
			if n := e.up.received.Load(); n != before {
				t.Fatalf("partition: the upstream received %d requests, want none", n-before)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.fault, func(t *testing.T) {
			healthy(t)
			f, err := e.inj.Inject(ctx, Request{Fault: tc.fault, Target: testEdge, Params: tc.params})
			if err != nil {
				t.Fatal(err)
			}
			if f.State != StateActive || f.Variant != "rpc" {
				t.Fatalf("injected fault = %+v", f)
			}
			if g := gauge(t, e.reg, f.Fault, testEdge); g != 1 {
				t.Fatalf("lab_fault_active = %v while active", g)
			}
			tc.check(t)
			healed, err := e.inj.Heal(ctx, f.ID)
			if err != nil || healed.State != StateHealed || healed.HealedBy != HealedByRequest || healed.HealError != "" {
				t.Fatalf("heal: %+v, %v", healed, err)
			}
			if g := gauge(t, e.reg, f.Fault, testEdge); g != 0 {
				t.Fatalf("lab_fault_active = %v after heal", g)
			}
			healthy(t)
		})
	}
}

// A partition also stalls connections that were open before it, and healing
// closes them so that clients reconnect instead of hanging.
func TestPartitionCatchesOpenConnectionsAndHealClosesThem(t *testing.T) {
	e := startEdges(t)
	c, err := net.Dial("tcp", e.proxy.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("5\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	f, err := e.inj.Inject(context.Background(), Request{Fault: "partition", Target: testEdge})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(300 * time.Millisecond))
	c.Write([]byte("5\n"))
	if _, err := io.ReadFull(c, buf); !isTimeout(err) {
		t.Fatalf("open connection during partition: err %v, want a timeout", err)
	}
	if _, err := e.inj.Heal(context.Background(), f.ID); err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(buf); !errors.Is(err, io.EOF) {
		t.Fatalf("after heal the partitioned connection should be closed, read err %v", err)
	}
}

// Toxiproxy's own API and its client library see (and can remove) the
// lab's toxics: toxiproxy-cli works against the lab.
func TestToxiproxyClientSeesLabToxics(t *testing.T) {
	e := startEdges(t)
	api := httptest.NewServer(e.server.Routes())
	t.Cleanup(api.Close)
	f, err := e.inj.Inject(context.Background(), Request{Fault: "latency", Target: testEdge, Params: ParamValues{"latency": "1500ms", "direction": "both"}})
	if err != nil {
		t.Fatal(err)
	}
	cl := toxiclient.NewClient(api.URL)
	p, err := cl.Proxy(testEdge)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := p.Toxics()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]float64{}
	for _, tx := range ts {
		names[tx.Name] = tx.Attributes["latency"].(float64)
	}
	if names["lab-"+f.ID+"-upstream"] != 1500 || names["lab-"+f.ID+"-downstream"] != 1500 {
		t.Fatalf("toxiproxy client sees toxics %v, want lab-%s-upstream/downstream with latency 1500", names, f.ID)
	}
	// Removed by hand with the client: healing still succeeds.
	if err := p.RemoveToxic("lab-" + f.ID + "-upstream"); err != nil {
		t.Fatal(err)
	}
	if h, err := e.inj.Heal(context.Background(), f.ID); err != nil || h.HealError != "" {
		t.Fatalf("heal after a manual removal: %+v, %v", h, err)
	}
	// And a toxic added through the client acts on the lab's edge.
	if _, err := p.AddToxic("by-hand", "latency", "downstream", 1, toxiclient.Attributes{"latency": 250}); err != nil {
		t.Fatal(err)
	}
	if d, _, err := e.exchange(10, false, 2*time.Second); err != nil || d < 250*time.Millisecond {
		t.Fatalf("toxic added via the client: %v, %v", d, err)
	}
}

func gauge(t testing.TB, reg *prometheus.Registry, fault, target string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "lab_fault_active" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["fault"] == fault && labels["target"] == target {
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}
