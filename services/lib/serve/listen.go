package serve

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
)

// AdminPortOffset is how far above its public port a part's admin listener
// is by default (the lab's port table: admin = public offset + 64).
const AdminPortOffset = 64

// Listen is where a part serves: its public listener (the API and page)
// and its admin listener (/healthz, /metrics, /debug/pprof/, /admin/).
type Listen struct {
	// Public empty serves the admin listener only (then Admin is required).
	Public string
	// Admin empty means 127.0.0.1 at the public port + AdminPortOffset.
	Admin string
	// Allow is the admin listener's --admin-allow list (see ParseAllow).
	Allow string
	// Limits bound the public listener (the zero value: DefaultLimits).
	Limits Limits
	// Procs is the part's GOMAXPROCS (0: Go's default, every CPU).
	Procs int
}

// Flags registers --listen (default public), --admin-listen,
// --admin-allow and the public listener's Limits (--max-inflight,
// --max-queue, --queue-timeout); what says what the public listener serves.
func (l *Listen) Flags(fs *flag.FlagSet, public, what string) {
	fs.StringVar(&l.Public, "listen", public, "public HTTP `address`: "+what)
	fs.StringVar(&l.Admin, "admin-listen", "", "admin HTTP `address`: /healthz, /metrics, /debug/pprof/, /admin/ (default 127.0.0.1 at the --listen port + 64; keep it on loopback unless --admin-allow says who else may call)")
	if l.Limits == (Limits{}) {
		l.Limits = DefaultLimits()
	}
	l.Limits.Flags(fs)
	fs.Func("procs", "CPUs this part runs Go code on at once (GOMAXPROCS), >= 1 (default: every CPU). Parts that share a few cores spend less CPU per request with fewer: idle threads stop spinning for each other's work", func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("want a whole number >= 1, got %q", v)
		}
		l.Procs = n
		return nil
	})
	fs.StringVar(&l.Allow, "admin-allow", "", "comma-separated `list` of who may use the admin listener besides loopback: CIDRs of client networks (the compose network) and host names it may be addressed by (a compose service name)")
}

// AdminAddr is the admin listener's address.
func (l Listen) AdminAddr() (string, error) {
	if l.Admin != "" {
		return l.Admin, nil
	}
	if l.Public == "" {
		return "", fmt.Errorf("--admin-listen: required when there is no public listener")
	}
	_, port, err := net.SplitHostPort(l.Public)
	if err != nil {
		return "", fmt.Errorf("--listen %q: %w", l.Public, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n == 0 {
		return "127.0.0.1:0", nil // an ephemeral public port: an ephemeral admin port
	}
	if n+AdminPortOffset > 65535 {
		return "", fmt.Errorf("--listen %q: no room for the admin listener at port %d; give --admin-listen", l.Public, n+AdminPortOffset)
	}
	return fmt.Sprintf("127.0.0.1:%d", n+AdminPortOffset), nil
}

// Guard is the admin listener's guard from --admin-allow.
func (l Listen) Guard() (Guard, error) {
	if strings.TrimSpace(l.Allow) == "" {
		return Guard{}, nil
	}
	return ParseAllow(strings.Split(l.Allow, ","))
}

// RegisterPprof adds net/http/pprof under /debug/pprof/ on mux: for a
// loopback API of the lab's own (the supervisor's control API).
func RegisterPprof(mux *http.ServeMux) { registerPprof(mux) }

// registerPprof adds net/http/pprof under /debug/pprof/ on mux.
func registerPprof(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}
