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
)

// A hop is the cheapest stand-in for a part on a request's path: it reads
// the request, passes the body on to the next hop (if any) over a
// keep-alive connection, and answers. Chained on the parts' ports through
// the lab's own edge proxies, hops measure what the topology alone costs.

// hopBody is the answer of every hop (the shape of a rating's answer).
var hopBody = []byte(`{"request_id":""}` + "\n")

// HopHandler answers every request with status after passing its body to
// next+path ("" for the last hop). A failed pass-on answers 502.
func HopHandler(next string, status int) http.Handler {
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			// As many idle connections as the load keeps in flight: a hop
			// must never pay a new connection per request.
			MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: 30 * time.Second,
			DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
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

// RunHop serves HopHandler on listen (a loopback address) until ctx ends.
func RunHop(ctx context.Context, listen, next string, status int) error {
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
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: HopHandler(next, status), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
