package load

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/lib/serve"
)

// ServeMetrics serves reg's /metrics (and a /healthz) on addr for Prometheus,
// the lab's load job, until stop is called. A busy port is an error before
// any load: most likely another `lab load` or experiment is running, and two
// runs on one port would mix their numbers.
func ServeMetrics(addr string, reg *prometheus.Registry) (stop func(), err error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("load metrics on %s: %w (is another `lab load` or experiment running?)", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", serve.MetricsHandler(reg, nil))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}
