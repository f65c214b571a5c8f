// Package registry is the lab's embedded schema registry (the
// `schema-registry` part), what kfake is for Kafka: a small server speaking
// the subset of Confluent Schema Registry's REST API that the lab and
// common clients use — subjects, versions, ids, lookups, compatibility
// checks, global and per-subject compatibility levels (BACKWARD, FORWARD,
// FULL, NONE and the transitive forms) — with compatibility decided by
// hamba/avro and every change kept durably in SQLite under the state dir.
//
// It is checked against a real registry (Apicurio's Confluent-compatible
// API) by one contract suite (contract_test.go); the documented differences
// are listed there.
package registry

import (
	"context"
	"flag"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/lib/serve"
)

// Runner is the `lab serve schema-registry` process.
type Runner struct {
	listen serve.Listen
	data   string
}

func (r *Runner) Flags(fs *flag.FlagSet) {
	r.listen.Flags(fs, "127.0.0.1:7706", "the registry's REST API (Confluent's subset)")
	fs.StringVar(&r.data, "data", "", "data `dir`ectory of the registry's SQLite file (required)")
}

func (r *Runner) Run(ctx context.Context, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	srv, closeStore, err := NewServer(r.data, reg, log)
	if err != nil {
		return err
	}
	defer closeStore()
	log.Info("schema registry ready", "listen", r.listen.Public, "data", r.data)
	return srv.Run(ctx, r.listen)
}

// NewServer opens the store in dir and returns the part's HTTP trees: the
// registry API on the public listener; /healthz, /metrics, /admin/ on the
// admin listener. Call closeStore after serving.
func NewServer(dir string, reg *prometheus.Registry, log *slog.Logger) (srv *serve.Server, closeStore func() error, err error) {
	st, err := openStore(dir)
	if err != nil {
		return nil, nil, err
	}
	a := newAPI(st, reg, log)
	mux := http.NewServeMux()
	a.routes(mux)
	srv = serve.New(serve.Options{
		Public:   mux,
		Registry: reg,
		Ready: func(ctx context.Context) error {
			_, err := st.subjects(ctx, false)
			return err
		},
		Log: log,
	})
	return srv, st.Close, nil
}
