package composeedges_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	toxiproxyserver "github.com/Shopify/toxiproxy/v2"
	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/ratingslab/lab/lab/composeedges"
	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/lab/layout"
)

// A real Toxiproxy (the version compose runs) behind its HTTP API, with one
// proxy from listen to upstream.
func startToxiproxy(t *testing.T, listen, upstream string) (url string, api *toxiproxy.Client) {
	t.Helper()
	server := toxiproxyserver.NewServer(toxiproxyserver.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	web := httptest.NewServer(server.Routes())
	t.Cleanup(func() { web.Close(); _ = server.Collection.Clear() })
	api = toxiproxy.NewClient(web.URL)
	if _, err := api.CreateProxy("ratings-rpc->movies-rpc", listen, upstream); err != nil {
		t.Fatal(err)
	}
	return web.URL, api
}

func enabled(t *testing.T, api *toxiproxy.Client) bool {
	t.Helper()
	p, err := api.Proxy("ratings-rpc->movies-rpc")
	if err != nil {
		t.Fatal(err)
	}
	return p.Enabled
}

// A proxy in front of a container that stopped refuses, as the container's
// port would, and opens once something listens behind it again; one
// disabled by hand (a partition) stays disabled whatever its upstream does.
func TestAProxyRefusesWhileNothingListensBehindIt(t *testing.T) {
	p := layout.Ports{Base: labtest.FreePortBase(t)}
	listen, upstream := p.Edge(0), p.MoviesRPC()
	url, api := startToxiproxy(t, listen, upstream)
	f := composeedges.New(url, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	step := func() {
		t.Helper()
		if err := f.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}

	step()
	labtest.WantRefused(t, listen, "nothing listens upstream")
	if !f.Held("ratings-rpc->movies-rpc") {
		t.Fatal("the closed proxy is not held: the watcher would report it as a partition fault")
	}

	movies := labtest.Echo(t, upstream)
	step()
	if err := labtest.EchoesThrough(listen); err != nil {
		t.Fatalf("once the upstream listens the proxy must carry traffic: %v", err)
	}
	if f.Held("ratings-rpc->movies-rpc") {
		t.Fatal("an open proxy is still held")
	}

	movies.Close() // the container stops
	step()
	labtest.WantRefused(t, listen, "after the upstream stopped")
	movies = labtest.Echo(t, upstream)
	defer movies.Close()
	step()
	if err := labtest.EchoesThrough(listen); err != nil {
		t.Fatalf("after the upstream came back: %v", err)
	}

	// Disabled by hand: the follower leaves it to whoever did it.
	proxy, err := api.Proxy("ratings-rpc->movies-rpc")
	if err != nil {
		t.Fatal(err)
	}
	if err := proxy.Disable(); err != nil {
		t.Fatal(err)
	}
	step()
	if enabled(t, api) || f.Held("ratings-rpc->movies-rpc") {
		t.Fatal("a proxy disabled by hand was opened, or counted as closed by the follower")
	}
}

// An API that does not answer is an error of the step, and nothing changes.
func TestAStepWithoutToxiproxyIsAnError(t *testing.T) {
	web := httptest.NewServer(http.NotFoundHandler())
	web.Close()
	if err := composeedges.New(web.URL, slog.New(slog.DiscardHandler)).Step(context.Background()); err == nil {
		t.Fatal("a step against a closed API reported no error")
	}
}
