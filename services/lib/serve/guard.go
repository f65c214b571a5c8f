package serve

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Guard protects a lab API that changes the lab (a part's admin listener,
// the supervisor's control API, the embedded Toxiproxy API) from anything
// but the lab's own tools, in particular from web pages the user visits:
//
//   - peers: loopback, plus the networks in AllowNets (the compose stack's
//     network, so Prometheus in another container can scrape);
//   - Host: a loopback name (localhost, 127.0.0.0/8, ::1), any IP literal,
//     or a name in AllowHosts. A DNS-rebinding page reaches the listener
//     under its own host name, which is refused;
//   - Origin: absent (tools do not send one) or the same origin as Host.
//     A cross-site request from a browser carries a foreign Origin;
//   - requests that change something (POST, PUT, PATCH, DELETE): never from
//     a browser (User-Agent "Mozilla/", as Toxiproxy refuses), and a body,
//     if any, only as application/json, so that no HTML form or
//     "simple" cross-site request can reach a JSON endpoint.
//
// Reading endpoints (GET /metrics, /healthz, /debug/pprof/) stay open to a
// browser on the same machine that addresses them by a loopback name.
type Guard struct {
	AllowNets  []*net.IPNet
	AllowHosts []string
	// What names the API in refusals ("the admin listener", "the control API").
	What string
}

// ParseAllow reads an --admin-allow list: CIDRs (peers allowed besides
// loopback) and host names (names the listener may be addressed by).
func ParseAllow(items []string) (Guard, error) {
	var g Guard
	for _, it := range items {
		it = strings.TrimSpace(it)
		switch {
		case it == "":
		case strings.Contains(it, "/"):
			_, n, err := net.ParseCIDR(it)
			if err != nil {
				return g, fmt.Errorf("--admin-allow %q: not a CIDR such as 172.28.0.0/16: %v", it, err)
			}
			g.AllowNets = append(g.AllowNets, n)
		case net.ParseIP(it) != nil:
			return g, fmt.Errorf("--admin-allow %q: give a network (%s/32), not a bare address", it, it)
		case validHostName(it):
			g.AllowHosts = append(g.AllowHosts, strings.ToLower(it))
		default:
			return g, fmt.Errorf("--admin-allow %q: want a CIDR (172.28.0.0/16) or a host name (webserver-rpc)", it)
		}
	}
	return g, nil
}

func validHostName(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// Wrap returns next behind the guard's checks; refusals are JSON 403s (415
// for a wrong content type) that say what was refused.
func (g Guard) Wrap(next http.Handler) http.Handler {
	what := g.What
	if what == "" {
		what = "this lab API"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := g.check(r); err != nil {
			code := http.StatusForbidden
			if _, ok := err.(contentTypeError); ok {
				code = http.StatusUnsupportedMediaType
			}
			writeError(w, code, what+" refused the request: "+err.Error())
			return
		}
		next.ServeHTTP(w, r)
	})
}

type contentTypeError struct{ error }

func (g Guard) check(r *http.Request) error {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil || !(ip.IsLoopback() || g.netAllowed(ip)) {
		return fmt.Errorf("client %s is not on loopback (or an allowed network)", host)
	}
	if !g.hostAllowed(r.Host) {
		return fmt.Errorf("the Host header %q is not a loopback name, an IP address or an allowed name (DNS rebinding?)", r.Host)
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return fmt.Errorf("the Origin header %q is foreign: cross-site requests are refused", o)
		}
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	if strings.Contains(r.UserAgent(), "Mozilla/") {
		return fmt.Errorf("%s from a browser (User-Agent %q): use the lab CLI or curl", r.Method, r.UserAgent())
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		if r.ContentLength != 0 {
			return contentTypeError{fmt.Errorf("a %s body needs Content-Type: application/json", r.Method)}
		}
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return contentTypeError{fmt.Errorf("Content-Type %q: this endpoint takes application/json", ct)}
	}
	return nil
}

func (g Guard) netAllowed(ip net.IP) bool {
	for _, n := range g.AllowNets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// hostAllowed: IP literals cannot be rebound; names must be loopback names
// or explicitly allowed.
func (g Guard) hostAllowed(hostport string) bool {
	h := hostport
	if hh, _, err := net.SplitHostPort(hostport); err == nil {
		h = hh
	}
	h = strings.ToLower(strings.TrimSuffix(strings.Trim(h, "[]"), "."))
	if h == "" {
		return false
	}
	if net.ParseIP(h) != nil {
		return true
	}
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	for _, a := range g.AllowHosts {
		if h == a {
			return true
		}
	}
	return false
}
