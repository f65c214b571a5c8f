package faults

import (
	"context"
	"encoding/json"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratingslab/lab/services/lib/serve"
)

// startService runs a real part HTTP server (services/lib/serve) on loopback
// whose public handler answers 200, and returns its public and admin
// addresses.
func startService(t testing.TB) (public, admin string) {
	t.Helper()
	pub, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adm, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := serve.New(serve.Options{Public: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"ok":true}`))
	})})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx, pub, adm) }()
	t.Cleanup(func() { cancel(); <-done })
	return pub.Addr().String(), adm.Addr().String()
}

func adminFaultSet(t *testing.T, addr string) serve.FaultSpec {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/admin/faults")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var spec serve.FaultSpec
	if err := json.NewDecoder(resp.Body).Decode(&spec); err != nil {
		t.Fatal(err)
	}
	return spec
}

// error_rate answers close to the set fraction of requests with 500, and
// handler_latency stacks with it on the same part; healing one leaves the
// other in force.
func TestServiceFaultsTakeEffectAndHeal(t *testing.T) {
	addr, admin := startService(t)
	inj := New(Config{Targets: Targets{Services: map[string]string{"ratings-rpc": admin}}})
	ctx := context.Background()

	er, err := inj.Inject(ctx, Request{Fault: "error_rate", Target: "ratings-rpc", Params: ParamValues{"rate": "0.3"}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 600
	var failed atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 6 {
				resp, err := client.Get("http://" + addr + "/api/x")
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusInternalServerError {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	// 600 draws at p=0.3: the standard deviation is about 0.019; 0.08 is
	// more than four of them.
	if got := float64(failed.Load()) / n; math.Abs(got-0.3) > 0.08 {
		t.Fatalf("error_rate 0.3: observed %.3f of requests failing", got)
	}

	hl, err := inj.Inject(ctx, Request{Fault: "handler_latency", Target: "ratings-rpc", Params: ParamValues{"latency": "200ms"}})
	if err != nil {
		t.Fatal(err)
	}
	if spec := adminFaultSet(t, admin); spec.ErrorRate != 0.3 || time.Duration(spec.Latency) != 200*time.Millisecond {
		t.Fatalf("merged fault set = %+v, want error_rate 0.3 and latency 200ms", spec)
	}
	start := time.Now()
	resp, err := client.Get("http://" + addr + "/api/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("handler_latency 200ms: answered in %v", d)
	}

	if _, err := inj.Heal(ctx, er.ID); err != nil {
		t.Fatal(err)
	}
	if spec := adminFaultSet(t, admin); spec.ErrorRate != 0 || time.Duration(spec.Latency) != 200*time.Millisecond {
		t.Fatalf("after healing error_rate the set is %+v, want only latency 200ms", spec)
	}
	if _, err := inj.Heal(ctx, hl.ID); err != nil {
		t.Fatal(err)
	}
	if spec := adminFaultSet(t, admin); spec.Active() {
		t.Fatalf("after healing both the set is %+v", spec)
	}
}

// A part without the admin endpoint a fault needs is named in the error,
// and nothing stays recorded as active.
func TestServiceFaultOnMissingEndpointIsRefused(t *testing.T) {
	_, admin := startService(t)
	inj := New(Config{Targets: Targets{Services: map[string]string{"movies-rpc": admin}}})
	_, err := inj.Inject(context.Background(), Request{Fault: "slow_db", Target: "movies-rpc"})
	if err == nil || !strings.Contains(err.Error(), "movies-rpc has no POST /admin/slow-db admin endpoint") {
		t.Fatalf("error = %v", err)
	}
	if a := inj.Active(); len(a) != 0 {
		t.Fatalf("a refused fault is listed as active: %+v", a)
	}
}
