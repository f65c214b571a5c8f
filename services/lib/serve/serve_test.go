package serve_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/lib/serve"
	"github.com/ratingslab/lab/services/lib/servetest"
)

// public is a small API shaped like a part's: Go 1.22 patterns with an id.
func public() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /things/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "thing "+r.PathValue("id"))
	})
	mux.HandleFunc("POST /things", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
	})
	return mux
}

// call returns the status and the body as text.
func call(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	a := servetest.Call(t, method, url, body)
	return a.Status, string(a.Body)
}

func TestHealthzReportsReadinessAndInfo(t *testing.T) {
	var notReady error
	s := serve.New(serve.Options{
		Public: public(),
		Ready:  func(context.Context) error { return notReady },
		Info:   func() map[string]any { return map[string]any{"breakers": map[string]any{"enabled": true}} },
	})
	_, base := servetest.StartBoth(t, s)

	code, body := call(t, "GET", base+"/healthz", "")
	var h map[string]any
	_ = json.Unmarshal([]byte(body), &h)
	if code != 200 || h["status"] != "ok" || h["breakers"] == nil {
		t.Errorf("ready: %d %s, want 200 with status ok and the breakers info", code, body)
	}

	notReady = errors.New("ratings-rpc: connection refused")
	code, body = call(t, "GET", base+"/healthz", "")
	h = nil
	_ = json.Unmarshal([]byte(body), &h)
	if code != 503 || h["status"] != "unavailable" || h["error"] != "ratings-rpc: connection refused" {
		t.Errorf("not ready: %d %s, want 503 with the error", code, body)
	}
}

// Prometheus offers gzip on every scrape; over loopback, once a second, the
// compressor costs CPU and keeps ~1 MiB of heap per process for nothing.
func TestMetricsAreServedUncompressedEvenWhenGzipIsOffered(t *testing.T) {
	s := serve.New(serve.Options{Public: public()})
	_, admin := servetest.StartBoth(t, s)
	req, _ := http.NewRequest("GET", admin+"/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip") // set by hand: the transport then leaves the body as sent
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ce := resp.Header.Get("Content-Encoding"); ce != "" || !strings.Contains(string(body), "go_goroutines ") {
		t.Errorf("/metrics with Accept-Encoding gzip: Content-Encoding %q, body starts %q; want plain text", ce, string(body[:min(len(body), 40)]))
	}
}

func TestREDMetricsAreLabelledByRoutePatternNotPath(t *testing.T) {
	s := serve.New(serve.Options{Public: public()})
	base, admin := servetest.StartBoth(t, s)
	call(t, "GET", base+"/things/1", "")
	call(t, "GET", base+"/things/2", "")
	call(t, "POST", base+"/things", "")
	call(t, "GET", base+"/nowhere", "")

	_, metrics := call(t, "GET", admin+"/metrics", "")
	for _, want := range []string{
		`lab_http_requests_total{code="200",method="GET",route="/things/{id}"} 2`,
		`lab_http_requests_total{code="201",method="POST",route="/things"} 1`,
		`lab_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`lab_http_request_duration_seconds_bucket{method="GET",route="/things/{id}",le="32.768"} 2`,
		`go_goroutines `,
		`process_cpu_seconds_total `,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(metrics, "/things/1") {
		t.Error("a raw path leaked into a label")
	}
}

// The admin listener's routes are the lab looking at the part (a scrape every
// second, a probe every 500 ms): counted, but without a 122-bucket latency
// histogram per route that nothing reads and Prometheus would hold.
func TestAdminRoutesAreCountedButNotTimed(t *testing.T) {
	s := serve.New(serve.Options{Public: public()})
	base, admin := servetest.StartBoth(t, s)
	call(t, "GET", admin+"/healthz", "")
	call(t, "GET", base+"/things/1", "")

	_, metrics := call(t, "GET", admin+"/metrics", "")
	for _, want := range []string{
		`lab_http_requests_total{code="200",method="GET",route="/healthz"} 1`,
		`lab_http_request_duration_seconds_count{method="GET",route="/things/{id}"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, route := range []string{"/healthz", "/metrics"} {
		if unwanted := `lab_http_request_duration_seconds_count{method="GET",route="` + route + `"}`; strings.Contains(metrics, unwanted) {
			t.Errorf("/metrics has %q: admin routes are not timed", unwanted)
		}
	}
}

func TestMetricsPassPromlint(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := serve.New(serve.Options{Public: public(), Registry: reg})
	s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/things/1", nil))
	servetest.LintLabMetrics(t, reg)
}

func TestFaultsInjectErrorsAndLatencyIntoPublicRoutesOnly(t *testing.T) {
	s := serve.New(serve.Options{Public: public()})
	pub, base := servetest.StartBoth(t, s)

	code, body := call(t, "POST", base+"/admin/faults", `{"error_rate": 1}`)
	if code != 200 || !strings.Contains(body, `"error_rate":1`) {
		t.Fatalf("set faults: %d %s", code, body)
	}
	if code, body := call(t, "GET", pub+"/things/1", ""); code != 500 || !strings.Contains(body, "injected fault") {
		t.Errorf("public route with error_rate 1: %d %s, want 500 injected", code, body)
	}
	if code, body := call(t, "GET", base+"/healthz", ""); code != 200 || !strings.Contains(body, `"faults"`) {
		t.Errorf("/healthz during faults: %d %s, want 200 showing the faults", code, body)
	}
	_, metrics := call(t, "GET", base+"/metrics", "")
	if !strings.Contains(metrics, `lab_http_requests_total{code="500",method="GET",route="/things/{id}"} 1`) {
		t.Error("the injected 500 is not counted under the route it hit")
	}

	call(t, "POST", base+"/admin/faults", `{"latency": "150ms"}`)
	began := time.Now()
	if code, _ := call(t, "GET", pub+"/things/1", ""); code != 200 {
		t.Errorf("latency only: status %d, want 200 (the POST replaced error_rate)", code)
	}
	if took := time.Since(began); took < 150*time.Millisecond {
		t.Errorf("request took %v, want at least the injected 150ms", took)
	}

	code, body = call(t, "DELETE", base+"/admin/faults", "")
	if code != 200 || !strings.Contains(body, `"error_rate":0,"latency":"0s"`) {
		t.Errorf("heal: %d %s", code, body)
	}
	if code, body := call(t, "GET", base+"/admin/faults", ""); !strings.Contains(body, `"latency":"0s"`) || code != 200 {
		t.Errorf("after heal: %d %s", code, body)
	}
}

func TestFaultRequestsAreValidated(t *testing.T) {
	s := serve.New(serve.Options{Public: public()})
	_, base := servetest.StartBoth(t, s)
	for body, field := range map[string]string{
		`{"error_rate": 1.5}`:            "error_rate",
		`{"error_rate": -0.1}`:           "error_rate",
		`{"error_rate": "lots"}`:         "error_rate",
		`{"latency": "soon"}`:            "latency",
		`{"latency": "-1s"}`:             "latency",
		`{"latency": "2h"}`:              "latency",
		`{"latency": "1s", "jitter": 1}`: "jitter",
		`{`:                              "body",
	} {
		code, got := call(t, "POST", base+"/admin/faults", body)
		if code != 400 || !strings.Contains(got, `"error":"`+field) {
			t.Errorf("%s: %d %s, want 400 naming %s", body, code, got, field)
		}
	}
	if s.Faults().Current().Active() {
		t.Error("a rejected fault request changed the faults")
	}
}

func TestAdminAnswersLoopbackOnlyAndPartsCanExtendIt(t *testing.T) {
	s := serve.New(serve.Options{Public: public()})
	s.HandleAdmin("POST /admin/slow-db", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))

	for _, remote := range []string{"127.0.0.1:5000", "[::1]:5000"} {
		req := httptest.NewRequest("POST", "/admin/slow-db", nil)
		req.RemoteAddr, req.Host = remote, "127.0.0.1:7776"
		rec := httptest.NewRecorder()
		s.Admin().ServeHTTP(rec, req)
		if rec.Code != http.StatusNoContent {
			t.Errorf("from %s: %d, want 204 from the part's own admin endpoint", remote, rec.Code)
		}
	}
	for _, remote := range []string{"10.1.2.3:5000", "192.168.0.9:1", "[2001:db8::1]:80", "garbage"} {
		for _, target := range []string{"/admin/faults", "/admin/slow-db", "/metrics", "/debug/pprof/"} {
			req := httptest.NewRequest("POST", target, strings.NewReader(`{"error_rate":1}`))
			req.Header.Set("Content-Type", "application/json")
			req.RemoteAddr = remote
			rec := httptest.NewRecorder()
			s.Admin().ServeHTTP(rec, req)
			if rec.Code != http.StatusForbidden {
				t.Errorf("%s from %s: %d, want 403", target, remote, rec.Code)
			}
		}
	}
	if s.Faults().Current().Active() {
		t.Error("a non-loopback client set faults")
	}
}

// The public listener serves the part's API and nothing else: health,
// metrics, profiling and faults are on the admin listener, and every path
// the part does not serve is a JSON 404 on both.
func TestPublicAndAdminListenersServeSeparateTrees(t *testing.T) {
	s := serve.New(serve.Options{Public: public()})
	pub, admin := servetest.StartBoth(t, s)
	for _, path := range []string{"/healthz", "/metrics", "/admin/faults", "/admin/config", "/debug/pprof/", "/nowhere"} {
		a := servetest.Call(t, "GET", pub+path, "")
		var e map[string]string
		if a.Status != 404 || json.Unmarshal(a.Body, &e) != nil || !strings.Contains(e["error"], path) {
			t.Errorf("public GET %s: %d %s, want a JSON 404 naming the path", path, a.Status, a.Body)
		}
	}
	if a := servetest.Call(t, "POST", pub+"/admin/faults", `{"error_rate":1}`); a.Status != 404 || s.Faults().Current().Active() {
		t.Errorf("public POST /admin/faults: %d %s, want 404 and no fault set", a.Status, a.Body)
	}
	if a := servetest.Call(t, "GET", pub+"/things/7", ""); a.Status != 200 {
		t.Errorf("public API: %d", a.Status)
	}
	for _, path := range []string{"/healthz", "/metrics", "/admin/faults", "/debug/pprof/", "/debug/pprof/goroutine?debug=1"} {
		if a := servetest.Call(t, "GET", admin+path, ""); a.Status != 200 {
			t.Errorf("admin GET %s: %d %.200s, want 200", path, a.Status, a.Body)
		}
	}
	for _, path := range []string{"/things/7", "/admin/nope", "/nowhere"} {
		a := servetest.Call(t, "GET", admin+path, "")
		if a.Status != 404 || !strings.HasPrefix(a.Header.Get("Content-Type"), "application/json") {
			t.Errorf("admin GET %s: %d %s %s, want a JSON 404", path, a.Status, a.Header.Get("Content-Type"), a.Body)
		}
	}
}

// A web page the user visits must not reach the admin listener: not by DNS
// rebinding (a foreign Host), not cross-site (a foreign Origin), not with a
// form or "simple" request (a non-JSON content type), not from a browser at
// all for anything that changes state.
func TestAdminRefusesBrowserStyleCrossSiteRequests(t *testing.T) {
	s := serve.New(serve.Options{Public: public()})
	_, admin := servetest.StartBoth(t, s)
	send := func(method, path, body string, hdr map[string]string, host string) int {
		req, _ := http.NewRequest(method, admin+path, strings.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		if host != "" {
			req.Host = host
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	jsonCT := map[string]string{"Content-Type": "application/json"}
	refused := []struct {
		name         string
		method, path string
		body         string
		hdr          map[string]string
		host         string
		want         int
	}{
		{"rebinding Host", "POST", "/admin/faults", `{"error_rate":1}`, jsonCT, "evil.example:80", 403},
		{"rebinding Host on a read", "GET", "/metrics", "", nil, "attacker.test", 403},
		{"foreign Origin", "POST", "/admin/faults", `{"error_rate":1}`, map[string]string{"Content-Type": "application/json", "Origin": "http://evil.example"}, "", 403},
		{"text/plain form post", "POST", "/admin/faults", `{"error_rate":1}`, map[string]string{"Content-Type": "text/plain"}, "", 415},
		{"urlencoded form post", "POST", "/admin/faults", `error_rate=1`, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "", 415},
		{"body without a type", "DELETE", "/admin/faults", `x`, nil, "", 415},
		{"browser user agent", "POST", "/admin/faults", `{"error_rate":1}`, map[string]string{"Content-Type": "application/json", "User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"}, "", 403},
	}
	for _, c := range refused {
		if got := send(c.method, c.path, c.body, c.hdr, c.host); got != c.want {
			t.Errorf("%s: %s %s answered %d, want %d", c.name, c.method, c.path, got, c.want)
		}
	}
	if s.Faults().Current().Active() {
		t.Fatal("a refused request set a fault")
	}
	allowed := []struct {
		name string
		host string
		hdr  map[string]string
	}{
		{"localhost", "localhost:1", jsonCT},
		{"IP literal", "", jsonCT},
		{"same origin", "", map[string]string{"Content-Type": "application/json; charset=utf-8", "Origin": admin}},
	}
	for _, c := range allowed {
		if got := send("POST", "/admin/faults", `{"error_rate":0}`, c.hdr, c.host); got != 200 {
			t.Errorf("%s: answered %d, want 200", c.name, got)
		}
	}
	if got := send("GET", "/debug/pprof/", "", map[string]string{"User-Agent": "Mozilla/5.0"}, "localhost"); got != 200 {
		t.Errorf("a browser on this machine reading pprof by a loopback name: %d, want 200", got)
	}
}

// --admin-allow lets named networks and host names in (the compose stack),
// and rejects what is not a CIDR or a host name.
func TestAdminAllowList(t *testing.T) {
	g, err := serve.ParseAllow([]string{"172.28.0.0/16", "webserver-rpc"})
	if err != nil {
		t.Fatal(err)
	}
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for _, c := range []struct {
		remote, host string
		want         int
	}{
		{"172.28.3.4:999", "webserver-rpc:7774", 200},
		{"172.28.3.4:999", "172.28.0.5:7774", 200},
		{"172.29.0.1:999", "webserver-rpc:7774", 403},
		{"172.28.3.4:999", "other:7774", 403},
		{"127.0.0.1:999", "localhost:7774", 200},
	} {
		req := httptest.NewRequest("GET", "/metrics", nil)
		req.RemoteAddr, req.Host = c.remote, c.host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("from %s as Host %s: %d, want %d", c.remote, c.host, rec.Code, c.want)
		}
	}
	for _, bad := range []string{"10.0.0.1", "not a name", "300.1.1.1/8"} {
		if _, err := serve.ParseAllow([]string{bad}); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("--admin-allow %q: %v, want an error naming it", bad, err)
		}
	}
}

// Every answer is JSON, also where http.ServeMux would answer by itself:
// its redirects of non-canonical paths ("/api//movies/1") and of subtree
// roots ("/admin" on the admin listener).
func TestTheMuxAnswersJSONNotHTMLRedirects(t *testing.T) {
	withAPI := serve.New(serve.Options{Public: public()})
	withoutAPI := serve.New(serve.Options{})
	for _, tc := range []struct {
		srv     http.Handler
		method  string
		target  string
		status  int
		mention string
	}{
		{withAPI, "GET", "/things//1", 404, "did you mean /things/1?"},
		{withAPI, "GET", "/./things/1", 404, "did you mean /things/1?"},
		{withAPI, "POST", "/things/../things", 404, "did you mean /things?"},
		{withAPI, "GET", "/admin", 404, "/admin"},
		{withoutAPI, "GET", "/nope//x", 404, "did you mean /nope/x?"},
		{withAPI.Admin(), "GET", "/admin", 404, "did you mean /admin/?"},
		{withAPI.Admin(), "GET", "/debug//pprof/", 404, "did you mean /debug/pprof/?"},
		{withAPI, "GET", "/things/1", 200, ""},
	} {
		req := httptest.NewRequest(tc.method, tc.target, nil)
		req.RemoteAddr, req.Host = "127.0.0.1:5000", "127.0.0.1"
		rec := httptest.NewRecorder()
		tc.srv.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.target, rec.Code, rec.Body, tc.status)
			continue
		}
		if tc.status == 200 {
			continue
		}
		var e struct{ Error string }
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" || json.Unmarshal(rec.Body.Bytes(), &e) != nil || !strings.Contains(e.Error, tc.mention) {
			t.Errorf("%s %s: %s %q, want a JSON error mentioning %q", tc.method, tc.target, ct, rec.Body, tc.mention)
		}
		if loc := rec.Header().Get("Location"); loc != "" {
			t.Errorf("%s %s: still redirects to %s", tc.method, tc.target, loc)
		}
	}
}

func TestHandleAdminRejectsPatternsOutsideAdmin(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("HandleAdmin accepted /public")
		}
	}()
	serve.New(serve.Options{}).HandleAdmin("POST /public", http.NotFoundHandler())
}

func TestShutdownLetsInFlightRequestsFinish(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "done")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	adm, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { stopped <- serve.New(serve.Options{Public: mux}).Serve(ctx, ln, adm) }()

	got := make(chan string, 1)
	go func() {
		res, err := http.Get("http://" + ln.Addr().String() + "/slow")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		got <- string(b)
	}()
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("request never reached the handler")
	}
	cancel()
	close(release)
	select {
	case body := <-got:
		if body != "done" {
			t.Errorf("in-flight request got %q, want done", body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("in-flight request did not finish")
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Serve = %v, want nil", err)
		}
	case <-time.After(serve.ShutdownGrace + time.Second):
		t.Fatal("Serve did not return")
	}
}
