package webserver

import "net/http"

// routes maps the public API (docs/api.md). Patterns double as the route
// label of the RED metrics, so keep them free of ids.
func (s *server) routes(mux *http.ServeMux) {
	mux.Handle("POST /api/ratings", s.handleRate())
	mux.Handle("GET /api/movies", s.handleMovies())
	mux.Handle("GET /api/movies/{id}", s.handleMovie())
	mux.Handle("GET /{$}", s.handlePage())

	// JSON answers instead of ServeMux's plain-text 404/405.
	mux.Handle("/api/ratings", methodNotAllowed("POST"))
	mux.Handle("/api/movies", methodNotAllowed("GET, HEAD"))
	mux.Handle("/api/movies/{id}", methodNotAllowed("GET, HEAD"))
	mux.Handle("/", notFound())
}
