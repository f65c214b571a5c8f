package serve

import (
	"net/http"
	"strings"
)

// noMuxRedirects answers with a JSON 404 where http.ServeMux would answer
// with an HTML redirect of its own: a path that is not canonical
// ("/api//movies/1", "/./x") or a subtree root without its slash ("/admin").
// Every answer of a part's API is JSON (docs/api.md), and none of the lab's
// handlers redirects, so a redirect can only come from the mux; the error
// names the path it would have redirected to.
func noMuxRedirects(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&redirectCatcher{ResponseWriter: w, r: r}, r)
	})
}

type redirectCatcher struct {
	http.ResponseWriter
	r       *http.Request
	caught  bool
	written bool
}

func (c *redirectCatcher) WriteHeader(code int) {
	if c.written {
		return
	}
	c.written = true
	loc := c.Header().Get("Location")
	if code < 300 || code > 399 || loc == "" {
		c.ResponseWriter.WriteHeader(code)
		return
	}
	c.caught = true
	c.Header().Del("Location")
	path := c.r.URL.Path
	if len(path) > 100 {
		path = path[:100] + "..."
	}
	if i := strings.IndexByte(loc, '?'); i >= 0 {
		loc = loc[:i]
	}
	writeError(c.ResponseWriter, http.StatusNotFound, "no such route: "+c.r.Method+" "+path+" (paths are matched as sent; did you mean "+loc+"?)")
}

func (c *redirectCatcher) Write(b []byte) (int, error) {
	if !c.written {
		c.WriteHeader(http.StatusOK)
	}
	if c.caught {
		return len(b), nil // the mux's HTML body
	}
	return c.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (c *redirectCatcher) Unwrap() http.ResponseWriter { return c.ResponseWriter }
