package rpc

import (
	"net/http"

	"github.com/ratingslab/lab/services/lib/serve"
)

func (s *server) routes(mux *http.ServeMux) {
	mux.Handle("GET /movies", s.handleMovies())
	mux.Handle("GET /movies/{id}", s.handleMovie())
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serve.WriteError(w, http.StatusNotFound, "no such route: "+r.Method+" "+r.URL.Path)
	}))
}
