package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ratingslab/lab/lab/connbudget"
)

// A hop is the cheapest stand-in for a part on a request's path: it reads
// the request, passes the body on to the next hop (if any) over a
// keep-alive connection, and answers. Chained on the parts' ports through
// the lab's own edge proxies, hops measure what the topology alone costs.

// hopBody is the answer of every hop (the shape of a rating's answer).
var hopBody = []byte(`{"request_id":""}` + "\n")

// HopHandler answers every request with status after passing its body to
// next+path ("" for the last hop) over at most maxConns connections (0: no
// cap; more requests wait for one). A failed pass-on answers 502.
func HopHandler(next string, status, maxConns int) http.Handler {
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			// As many idle connections as the load keeps in flight: a hop
			// must never pay a new connection per request.
			MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: 30 * time.Second,
			MaxConnsPerHost: maxConns,
			DialContext:     (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		},
	}
	next = strings.TrimSuffix(next, "/")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if next != "" {
			req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, next+r.URL.Path, bytes.NewReader(body))
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(hopBody)
	})
}

// RunHop serves HopHandler on listen (a loopback address) until ctx ends,
// holding at most the connections its file descriptors allow (HopBudget):
// an overloaded hop refuses what is over (connbudget) instead of
// running out of descriptors, and says so on log once a second.
func RunHop(ctx context.Context, listen, next string, status int, log io.Writer) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--listen %q: a hop listens on loopback only", listen)
	}
	if status < 200 || status > 299 {
		return fmt.Errorf("--status %d: must be a 2xx code", status)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	budget, limit := HopBudget(next != "")
	l := connbudget.NewListener(ln, budget)
	outbound := 0
	if next != "" {
		outbound = budget
	}
	srv := &http.Server{Handler: HopHandler(next, status, outbound), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				srv.Close()
				return
			case <-done:
				return
			case <-t.C:
				if n := l.TakeRefused(); n > 0 {
					fmt.Fprintf(log, "hop %s: overloaded: refused %d connections in the last second, at its budget of %d open connections (RLIMIT_NOFILE %d)\n", listen, n, budget, limit)
				}
			}
		}
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// maxHopConns caps a hop's connections whatever its descriptors allow: a
// step held (p99 < 100 ms) keeps at most rate × 0.1 s requests in flight
// at a hop, 2,048 only beyond 20,000/s (past the load generator's reach),
// while the edge proxies between hops hold two descriptors per connection
// in the supervisor, whose own limit every proxied connection shares.
const maxHopConns = 2048

// HopBudget is how many client connections a hop holds at once, and the
// descriptor limit it comes from: RLIMIT_NOFILE's soft limit (which Go
// already raised to the hard limit when the process started) less a
// reserve, halved for a hop that passes requests on (each one it serves
// may hold a connection to the next hop too), at most maxHopConns. The
// load generator never caps its connections, so a step beyond what the
// hops carry opens connections until a limit: before the budget a hop ran
// out of descriptors ("accept4: too many open files") and failed in every
// way at once; now it refuses what is over the budget.
func HopBudget(forwarding bool) (budget int, limit uint64) {
	shares := 1
	if forwarding {
		shares = 2
	}
	return min(connbudget.Share(shares), maxHopConns), connbudget.Descriptors()
}
