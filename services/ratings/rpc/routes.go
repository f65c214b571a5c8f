package rpc

import (
	"net/http"

	"github.com/ratingslab/lab/services/lib/serve"
)

func (s *server) routes(mux *http.ServeMux) {
	mux.Handle("POST /ratings", s.handleRate())
	mux.Handle("GET /rated-movies", s.handleRatedMovies())
	mux.Handle("GET /rated-movies/{id}", s.handleRatedMovie())
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serve.WriteError(w, http.StatusNotFound, "no such route: "+r.Method+" "+r.URL.Path)
	}))
}
