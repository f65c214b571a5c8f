package parts

import (
	"runtime"
	"strconv"

	"github.com/ratingslab/lab/lab/layout"
	moviesrpc "github.com/ratingslab/lab/services/movies/rpc"
	ratingsrpc "github.com/ratingslab/lab/services/ratings/rpc"
	webserverrpc "github.com/ratingslab/lab/services/webserver/rpc"
)

// The RPC variant: webserver-rpc → ratings-rpc → movies-rpc over HTTP, each
// call through its edge's fault proxy, a timeout and a circuit breaker.

func init() {
	Register(&Part{
		Name:      "movies-rpc",
		Variant:   VariantRPC,
		Summary:   "HTTP service over the legacy movie catalog (SQLite)",
		Start:     10,
		NewRunner: func() Runner { return &moviesrpc.Runner{} },
		Args: func(env Env, _ int) []string {
			return []string{"--listen", env.Ports.MoviesRPC(), "--legacy-db", env.Dir.LegacyDB(), "--procs", rpcProcs()}
		},
		HTTP: func(p layout.Ports, _ int) string { return p.MoviesRPC() },
	})
	Register(&Part{
		Name:      "ratings-rpc",
		Variant:   VariantRPC,
		Summary:   "HTTP ratings service: validates with movies-rpc, count+sum in its own SQLite",
		Start:     11,
		NewRunner: func() Runner { return &ratingsrpc.Runner{} },
		Args: func(env Env, _ int) []string {
			return []string{
				"--listen", env.Ports.RatingsRPC(),
				"--movies-url", "http://" + EdgeFrom("ratings-rpc", "movies-rpc").Listen(env.Ports),
				"--data", env.Dir.Data("ratings-rpc"),
				"--breakers", breakersFlag(env.Options.Breakers),
				"--procs", rpcProcs(),
			}
		},
		HTTP: func(p layout.Ports, _ int) string { return p.RatingsRPC() },
	})
	Register(&Part{
		Name:      "webserver-rpc",
		Variant:   VariantRPC,
		Summary:   "public API and page; calls ratings-rpc synchronously",
		Start:     12,
		NewRunner: func() Runner { return &webserverrpc.Runner{} },
		Args: func(env Env, _ int) []string {
			return []string{
				"--listen", env.Ports.WebserverRPC(),
				"--ratings-url", "http://" + EdgeFrom("webserver-rpc", "ratings-rpc").Listen(env.Ports),
				"--breakers", breakersFlag(env.Options.Breakers),
				"--procs", rpcProcs(),
			}
		},
		HTTP: func(p layout.Ports, _ int) string { return p.WebserverRPC() },
	})
}

// SharedProcs is the GOMAXPROCS of a lab process on a request's path (the
// RPC parts, through --procs, and the supervisor with the edge proxies): a
// quarter of the machine's CPUs, at least one. These processes share the
// machine; with every CPU each one's idle threads spin looking for work
// its other goroutines hand over, and on two cores that cost a fifth of
// the RPC parts' CPU per rating and a third of the supervisor's samples
// (docs/benchmarks.md, wave 4). One CPU carries ratings-rpc, the busiest,
// well past 4,000 ratings/s. --part-flag ratings-rpc=--procs=N overrides
// it for a part.
func SharedProcs() int { return max(1, runtime.NumCPU()/4) }

func rpcProcs() string { return strconv.Itoa(SharedProcs()) }

func breakersFlag(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
