package supervisor_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"

	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/lab/supervisor"
)

// An edge in front of a part the lab runs behaves like that part's port:
// it refuses connections while no process listens behind it (before the
// first start, after a kill), and carries traffic once the part listens.
// An edge to something the lab does not run (an external broker) is open
// from the start.
func TestAnEdgeRefusesWhileNothingListensBehindIt(t *testing.T) {
	p := layout.Ports{Base: labtest.FreePortBase(t)}
	toMovies := parts.EdgeFrom("ratings-rpc", "movies-rpc")
	toRatings := parts.EdgeFrom("webserver-rpc", "ratings-rpc")
	edges := supervisor.NewEdges(p, []parts.Edge{toMovies, toRatings}, []string{"movies-rpc"}, slog.New(slog.DiscardHandler))
	if err := edges.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(edges.Close)
	movies := toMovies.Listen(p)

	labtest.WantRefused(t, movies, "before movies-rpc started")
	if edges.Open("movies-rpc") {
		t.Fatal("Open says the edge is open before movies-rpc started")
	}
	ratings := labtest.Echo(t, p.RatingsRPC()) // ratings-rpc is not run by this lab
	defer ratings.Close()
	if err := labtest.EchoesThrough(toRatings.Listen(p)); err != nil {
		t.Fatalf("an edge to a part the lab does not run must be open: %v", err)
	}

	// Started, but not listening yet: still refused.
	edges.ServerStarted("movies-rpc")
	labtest.WantRefused(t, movies, "started, not yet listening")
	ln := labtest.Echo(t, p.MoviesRPC())
	labtest.Eventually(t, 5*time.Second, "the edge to open once movies-rpc listens", func() error { return labtest.EchoesThrough(movies) })
	if !edges.Open("movies-rpc") {
		t.Fatal("Open says closed while traffic passes")
	}

	// An edge added later in front of the same part (a replay fork's) opens
	// at once while the part listens, and follows it from then on.
	forked := p.Edge(13)
	if err := edges.Add("fork-e2e->movies-rpc", forked, p.MoviesRPC(), "movies-rpc"); err != nil {
		t.Fatal(err)
	}
	if err := labtest.EchoesThrough(forked); err != nil {
		t.Fatalf("an edge added while its part listens: %v", err)
	}

	// Killed: the process's port is gone and the edge refuses at once;
	// healing every fault does not open it while nothing listens.
	ln.Close()
	edges.ServerExited("movies-rpc")
	labtest.WantRefused(t, movies, "after the kill")
	labtest.WantRefused(t, forked, "the added edge, after the kill")
	edges.HealAll()
	labtest.WantRefused(t, movies, "after healing every fault")

	// A fault set on the closed edge applies once it opens again.
	proxy, err := edges.Server().Collection.Get(toMovies.Name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := proxy.Toxics.AddToxicJson(strings.NewReader(`{"name":"slow","type":"latency","stream":"downstream","attributes":{"latency":300}}`)); err != nil {
		t.Fatal(err)
	}
	edges.ServerStarted("movies-rpc")
	ln = labtest.Echo(t, p.MoviesRPC())
	defer ln.Close()
	labtest.Eventually(t, 5*time.Second, "the edge to open again after the restart", func() error { return labtest.EchoesThrough(movies) })
	labtest.Eventually(t, 5*time.Second, "the added edge to open again after the restart", func() error { return labtest.EchoesThrough(forked) })
	start := time.Now()
	if err := labtest.EchoesThrough(movies); err != nil || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("through the reopened edge with its 300 ms latency fault: %v after %v", err, time.Since(start))
	}
}

// edgeToMovies starts the lab's edge ratings-rpc->movies-rpc, in front of
// a movies-rpc the lab runs.
func edgeToMovies(t *testing.T) (layout.Ports, parts.Edge, *supervisor.Edges) {
	t.Helper()
	p := layout.Ports{Base: labtest.FreePortBase(t)}
	toMovies := parts.EdgeFrom("ratings-rpc", "movies-rpc")
	edges := supervisor.NewEdges(p, []parts.Edge{toMovies}, []string{"movies-rpc"}, slog.New(slog.DiscardHandler))
	if err := edges.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(edges.Close)
	return p, toMovies, edges
}

// An edge follows its upstream address, not a process: a stopped part's
// port taken by something else (the bare hops of `lab bench post` stand in
// for stopped parts) opens the edge.
func TestAnEdgeOpensForWhateverTakesItsPartsPort(t *testing.T) {
	p, toMovies, edges := edgeToMovies(t)
	edges.ServerStarted("movies-rpc")
	edges.ServerExited("movies-rpc") // stopped before it listened
	labtest.WantRefused(t, toMovies.Listen(p), "the part stopped, nothing on its port")

	stand := labtest.Echo(t, p.MoviesRPC())
	defer stand.Close()
	labtest.Eventually(t, 5*time.Second, "the edge to open for what took the port", func() error { return labtest.EchoesThrough(toMovies.Listen(p)) })
}

// An edge someone disabled through Toxiproxy's own API stays disabled when
// the part behind it restarts: the lab opens only the edges it closed.
func TestAnEdgeDisabledByHandStaysClosedAcrossItsPartsRestart(t *testing.T) {
	p, toMovies, edges := edgeToMovies(t)
	movies := toMovies.Listen(p)
	edges.ServerStarted("movies-rpc")
	ln := labtest.Echo(t, p.MoviesRPC())
	labtest.Eventually(t, 5*time.Second, "the edge to open once movies-rpc listens", func() error { return labtest.EchoesThrough(movies) })

	// What Toxiproxy's API does for {"enabled": false} (ProxyUpdate). Not
	// through HTTP: that handler reads Enabled before taking the proxy's
	// lock, a race of Toxiproxy's own that -race reports against the
	// watch's Start.
	proxy, err := edges.Server().Collection.Get(toMovies.Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := proxy.Update(&toxiproxy.Proxy{Listen: proxy.Listen, Upstream: proxy.Upstream, Enabled: false}); err != nil {
		t.Fatal(err)
	}
	labtest.WantRefused(t, movies, "disabled by hand")

	ln.Close()
	edges.ServerExited("movies-rpc")
	edges.ServerStarted("movies-rpc")
	ln = labtest.Echo(t, p.MoviesRPC())
	defer ln.Close()
	// The watch dials at least every 250 ms: a second is four chances to
	// open an edge it should not.
	time.Sleep(time.Second)
	labtest.WantRefused(t, movies, "after the part's restart, still disabled by hand")

	edges.HealAll()
	if err := labtest.EchoesThrough(movies); err != nil {
		t.Fatalf("heal --all enables every proxy whose part listens: %v", err)
	}
}
