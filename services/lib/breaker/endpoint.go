package breaker

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Endpoint is a dependency's JSON API at a base URL, every call made through
// the dependency's timeout, retries and breaker. A role's client wraps one
// and adds only what is its own: paths, wire types, and which statuses mean
// what to its callers.
type Endpoint struct {
	base string
	http *http.Client
	dep  *Dependency
}

// NewEndpoint calls dep at baseURL ("http://127.0.0.1:7731") with c; the
// error for a bad URL names the dependency.
func NewEndpoint(baseURL string, c *http.Client, dep *Dependency) (*Endpoint, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s URL %q: want http://host:port", dep.Name(), baseURL)
	}
	return &Endpoint{base: strings.TrimRight(baseURL, "/"), http: c, dep: dep}, nil
}

// Call is CallJSON on path (below the base URL) inside Dependency.Do. Its
// errors are those of Do: a *UnavailableError, or a client error wrapping
// the *StatusError of a 4xx (see Status).
func (e *Endpoint) Call(ctx context.Context, method, path string, in, out any) error {
	return e.dep.Do(ctx, OperationOf(method), func(ctx context.Context) error {
		_, err := CallJSON(ctx, e.http, method, e.base+path, in, out)
		return err
	})
}

// Status is the HTTP status of the *StatusError in err, or 0 when the
// dependency gave no answer.
func Status(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	return 0
}

// Upstream is one HTTP dependency of a part as the part's flags set it:
// where it is, how many connections to it may be open, and the breaker
// settings of calls to it.
type Upstream struct {
	Name     string // "movies-rpc": names its breaker, metrics and errors
	URLFlag  string // "movies-url": the flag that sets URL, named in errors
	URL      string
	Pool     ClientOptions
	Settings Settings
}

// Flags adds --<URLFlag>, --max-conns, --max-pending and the breaker
// flags, with u's current URL and Settings as their defaults. Bad sizes
// are flag errors, before anything starts.
func (u *Upstream) Flags(fs *flag.FlagSet) {
	fs.StringVar(&u.URL, u.URLFlag, u.URL, "base URL of "+u.Name+" (in the lab: its edge proxy)")
	u.Pool = u.Pool.withDefaults()
	fs.Func("max-conns", fmt.Sprintf("connection pool to %s: calls in flight at once, >= 1 (default %d: Hystrix's thread pool per dependency)", u.Name, u.Pool.MaxConnsPerHost), atLeast(&u.Pool.MaxConnsPerHost, 1))
	fs.Func("max-pending", fmt.Sprintf("calls waiting for a connection to %s, >= 1; more fail at once (default %d: Envoy's max_pending_requests)", u.Name, u.Pool.MaxPending), atLeast(&u.Pool.MaxPending, 1))
	u.Settings.Flags(fs)
}

// Connect creates the dependency, with its metrics registered in reg, and
// the Endpoint that calls it through its connection pool.
func (u Upstream) Connect(reg prometheus.Registerer, log *slog.Logger) (*Endpoint, *Dependency, error) {
	dep, err := New(u.Name, u.Settings, NewMetrics(reg), log)
	if err != nil {
		return nil, nil, err
	}
	pool := u.Pool.withDefaults()
	dep.pool = newPool(pool)
	api, err := NewEndpoint(u.URL, NewHTTPClient(pool), dep)
	if err != nil {
		return nil, nil, fmt.Errorf("--%s: %w", u.URLFlag, err)
	}
	return api, dep, nil
}
