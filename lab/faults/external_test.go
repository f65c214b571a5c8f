package faults

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/lab/supervisor"
	"github.com/ratingslab/lab/services/lib/serve"
	"github.com/ratingslab/lab/services/lib/servetest"
)

// Faults set around the lab — a toxic added with a Toxiproxy client, an
// error rate posted to a part's admin endpoint — are reported as external;
// the lab's own faults are not reported twice.
func TestFaultsSetOutsideTheLabAreReported(t *testing.T) {
	e := startEdges(t)
	_, admin := startService(t)
	e.inj.cfg.Targets.Services = map[string]string{"ratings-rpc": admin}
	api := httptest.NewServer(serve.Guard{What: "the Toxiproxy API"}.Wrap(e.server.Routes()))
	t.Cleanup(api.Close)
	ctx := context.Background()

	if got := e.inj.External(ctx); len(got) != 0 {
		t.Fatalf("a quiet lab reports external faults: %v", got)
	}
	ours, err := e.inj.Inject(ctx, Request{Fault: "latency", Target: testEdge, Params: ParamValues{"latency": "100ms"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.inj.Inject(ctx, Request{Fault: "handler_latency", Target: "ratings-rpc", Params: ParamValues{"latency": "10ms"}}); err != nil {
		t.Fatal(err)
	}
	if got := e.inj.External(ctx); len(got) != 0 {
		t.Fatalf("the lab's own faults are reported as external: %v", got)
	}

	p, err := toxiclient.NewClient(api.URL).Proxy(testEdge)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.AddToxic("by-hand", "bandwidth", "downstream", 1, toxiclient.Attributes{"rate": 10}); err != nil {
		t.Fatal(err)
	}
	if a := servetest.Call(t, "POST", "http://"+admin+"/admin/faults", `{"error_rate":0.5,"latency":"10ms"}`); a.Status != 200 {
		t.Fatalf("set error_rate by hand: %d %s", a.Status, a.Body)
	}

	got := e.inj.External(ctx)
	var lines []string
	for _, f := range got {
		lines = append(lines, f.String())
	}
	all := strings.Join(lines, "\n")
	if len(got) != 2 || !strings.Contains(all, `bandwidth on client->server: toxic "by-hand"`) || !strings.Contains(all, "error_rate on ratings-rpc: 0.5") ||
		!strings.Contains(all, "toxiproxy API") || !strings.Contains(all, "admin endpoint") {
		t.Errorf("external faults:\n%s\nwant the bandwidth toxic (toxiproxy API) and the error rate (admin endpoint), nothing else", all)
	}
	if _, err := e.inj.Heal(ctx, ours.ID); err != nil {
		t.Fatal(err)
	}
}

// An edge the supervisor closed because nothing listens behind it (a
// killed part) is not a fault someone set through Toxiproxy's API; one
// disabled by hand is.
func TestAnEdgeClosedInFrontOfADeadPartIsNoExternalFault(t *testing.T) {
	p := layout.Ports{Base: labtest.FreePortBase(t)}
	toMovies := parts.EdgeFrom("ratings-rpc", "movies-rpc")
	toRatings := parts.EdgeFrom("webserver-rpc", "ratings-rpc")
	edges := supervisor.NewEdges(p, []parts.Edge{toMovies, toRatings}, []string{"movies-rpc", "ratings-rpc"}, slog.New(slog.DiscardHandler))
	if err := edges.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(edges.Close)
	inj := New(Config{Proxies: edges.Server(), Held: edges.Held})
	ctx := context.Background()

	// Neither part listens yet, so both edges are closed by the lab.
	edges.ServerExited("movies-rpc")
	if got := inj.External(ctx); len(got) != 0 {
		t.Fatalf("edges the lab closed are reported as external faults: %v", got)
	}

	ln := labtest.Echo(t, p.RatingsRPC())
	defer ln.Close()
	labtest.Eventually(t, 5*time.Second, "the edge to ratings-rpc to open", func() error { return labtest.EchoesThrough(toRatings.Listen(p)) })
	proxy, err := edges.Server().Collection.Get(toRatings.Name)
	if err != nil {
		t.Fatal(err)
	}
	proxy.Stop() // what Toxiproxy's API does for {"enabled": false}
	got := inj.External(ctx)
	if len(got) != 1 || got[0].Kind != "proxy disabled" || got[0].Target != toRatings.Name {
		t.Fatalf("external faults %v, want only %s disabled by hand", got, toRatings.Name)
	}
}
