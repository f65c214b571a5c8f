// Package servetest runs a part's serve.Server on a real loopback port for
// package tests, calls it, and stands in for the lab's fault proxy on an
// edge between two parts.
package servetest

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/ratingslab/lab/services/lib/serve"
)

// Start serves srv on 127.0.0.1 port 0 until the test ends and returns the
// base URL of its public listener (StartBoth also gives the admin one).
func Start(t testing.TB, srv *serve.Server) string {
	t.Helper()
	public, _ := StartBoth(t, srv)
	return public
}

// StartBoth serves srv's public and admin listeners on 127.0.0.1 port 0
// until the test ends and returns both base URLs. The listeners are open
// before it returns, so the server takes requests at once. At the end Serve
// must return nil within its shutdown grace.
func StartBoth(t testing.TB, srv *serve.Server) (public, admin string) {
	t.Helper()
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adm, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, pub, adm) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve returned %v after cancel, want nil", err)
			}
		case <-time.After(serve.ShutdownGrace + time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	return "http://" + pub.Addr().String(), "http://" + adm.Addr().String()
}

// Answer is what a call got back.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// Call sends one request with body (empty: none; else sent as JSON) and
// reads the whole answer.
func Call(t testing.TB, method, url, body string) Answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json") // the lab's APIs take JSON
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, url, err)
	}
	return Answer{Status: res.StatusCode, Header: res.Header, Body: data}
}

// CallJSON is Call decoding the JSON answer into out (nil: not decoded);
// it returns the status code.
func CallJSON(t testing.TB, method, url, body string, out any) int {
	t.Helper()
	a := Call(t, method, url, body)
	a.Decode(t, out)
	return a.Status
}

// Decode decodes the answer's JSON body into out (nil: nothing to do).
func (a Answer) Decode(t testing.TB, out any) {
	t.Helper()
	if out == nil {
		return
	}
	if err := json.Unmarshal(a.Body, out); err != nil {
		t.Fatalf("answer %d is not JSON: %s", a.Status, a.Body)
	}
}

// Edge stands between two parts like the lab's fault proxy: it forwards to
// the upstream part, or while blackholed holds every request until the
// caller gives up.
type Edge struct {
	*httptest.Server
	blackholed atomic.Bool
}

// NewEdge forwards to the part at upstream (a base URL) until the test ends.
func NewEdge(t testing.TB, upstream string) *Edge {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ErrorLog = log.New(io.Discard, "", 0) // callers giving up is what these tests do
	e := &Edge{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e.blackholed.Load() {
			// Take the whole request, as a silent peer's kernel does; only
			// then does the server notice the caller hanging up.
			_, _ = io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(e.Close)
	return e
}

// Blackhole makes the edge hold requests (true) or forward them again (false).
func (e *Edge) Blackhole(on bool) { e.blackholed.Store(on) }

// Metrics renders reg in the text format, as a scrape would see it.
func Metrics(t testing.TB, reg *prometheus.Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// LintLabMetrics fails the test for every promlint problem of a lab_ metric
// in reg (the Go and process collectors are not ours to name).
func LintLabMetrics(t testing.TB, reg *prometheus.Registry) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "lab_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}
}
