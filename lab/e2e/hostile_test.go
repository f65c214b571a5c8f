package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/faults"
	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/lab/supervisor"
)

// hostile is one way a web page the user visits could try to reach a lab API.
type hostile struct {
	name string
	edit func(r *http.Request)
	want int // the refusal
}

var hostileVariants = []hostile{
	{"DNS-rebound Host", func(r *http.Request) { r.Host = "attacker.example:" + r.URL.Port() }, 403},
	{"rebound Host, no port", func(r *http.Request) { r.Host = "lab.attacker.example" }, 403},
	{"foreign Origin", func(r *http.Request) { r.Header.Set("Origin", "http://attacker.example") }, 403},
	{"null Origin", func(r *http.Request) { r.Header.Set("Origin", "null") }, 403},
	{"same host, other port Origin", func(r *http.Request) { r.Header.Set("Origin", "http://127.0.0.1:1") }, 403},
	{"text/plain body", func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, 415},
	{"form body", func(r *http.Request) { r.Header.Set("Content-Type", "application/x-www-form-urlencoded") }, 415},
	{"multipart body", func(r *http.Request) { r.Header.Set("Content-Type", "multipart/form-data; boundary=x") }, 415},
	{"body without a type", func(r *http.Request) { r.Header.Del("Content-Type") }, 415},
	{"browser user agent", func(r *http.Request) {
		r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36")
	}, 403},
}

// Every lab API that changes the lab — the control API, Toxiproxy's API,
// each part's admin listener — refuses every browser-style request, and the
// public listeners serve no admin endpoint at all: nothing is changed.
// The counts are the torture figures of docs/reliability.md.
func TestLabAPIsRefuseHostileRequests(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	t.Parallel()
	l := labtest.Start(t, "--no-prometheus")
	type target struct{ surface, method, url, body string }
	var targets []target
	add := func(surface, method, url, body string) { targets = append(targets, target{surface, method, url, body}) }
	control := "http://" + l.Ports.Control()
	add("control API", "POST", control+"/v1/faults", `{"fault":"pause","target":"ratings-rpc","for":"30s"}`)
	add("control API", "POST", control+"/v1/parts/ratings-rpc/pause", `{}`)
	add("control API", "POST", control+"/v1/shutdown", `{}`)
	add("control API", "DELETE", control+"/v1/faults", `{}`)
	toxi := "http://" + l.Ports.Toxiproxy()
	add("Toxiproxy API", "POST", toxi+"/proxies/ratings-rpc->movies-rpc/toxics", `{"type":"timeout","attributes":{"timeout":0}}`)
	add("Toxiproxy API", "POST", toxi+"/reset", `{}`)
	for _, p := range status(t, l).Parts {
		if p.Admin == "" {
			t.Fatalf("part %s has no admin listener", p.Name)
		}
		add("admin "+p.Name, "POST", "http://"+p.Admin+"/admin/faults", `{"error_rate":1}`)
	}
	counts := map[string][2]int{} // surface → tried, accepted
	client := &http.Client{Timeout: 5 * time.Second}
	for _, tg := range targets {
		for _, h := range hostileVariants {
			req, _ := http.NewRequest(tg.method, tg.url, strings.NewReader(tg.body))
			req.Header.Set("Content-Type", "application/json")
			h.edit(req)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s %s (%s): %v", tg.method, tg.url, h.name, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			c := counts[tg.surface]
			c[0]++
			if resp.StatusCode != h.want {
				c[1]++
				t.Errorf("%s: %s %s with %s answered %d %s, want %d", tg.surface, tg.method, tg.url, h.name, resp.StatusCode, b, h.want)
			}
			counts[tg.surface] = c
		}
	}
	// The public listeners: no admin, health, metrics or profiling there.
	for _, pub := range []string{l.Ports.WebserverRPC(), l.Ports.WebserverStream(), l.Ports.RatingsRPC(), l.Ports.MoviesRPC(), l.Ports.RatingsStream(0), l.Ports.MoviesConnect()} {
		for _, path := range []string{"/admin/faults", "/admin/config", "/admin/slow-db", "/admin/throttle", "/healthz", "/metrics", "/debug/pprof/"} {
			for _, method := range []string{"GET", "POST"} {
				req, _ := http.NewRequest(method, "http://"+pub+path, strings.NewReader(`{"error_rate":1,"delay":"1s"}`))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				c := counts["public listeners"]
				c[0]++
				if resp.StatusCode != 404 && resp.StatusCode != 405 || !strings.Contains(resp.Header.Get("Content-Type"), "json") {
					c[1]++
					t.Errorf("public %s %s%s: %d %s %s, want a JSON 404", method, pub, path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
				}
				counts["public listeners"] = c
			}
		}
	}
	for s, c := range counts {
		t.Logf("%-26s %3d hostile requests, %d accepted", s, c[0], c[1])
	}

	// Nothing changed: no fault, no toxic, every part healthy, the lab up.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := faults.NewClient(l.Control()).List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Active)+len(list.History)+len(list.External) != 0 {
		t.Errorf("hostile requests left faults behind: %+v", list)
	}
	for _, p := range status(t, l).Parts {
		if p.Health != supervisor.HealthOK {
			t.Errorf("%s is %s after the hostile requests", p.Name, p.Health)
		}
	}
	// And the lab's own tools still get through.
	if out := l.MustRun("chaos", "inject", "error_rate", "--target", "ratings-rpc", "--rate", "0.1", "--for", "5s"); !strings.Contains(out, "error_rate") {
		t.Errorf("lab chaos inject: %s", out)
	}
	l.MustRun("chaos", "heal", "--all")
}
