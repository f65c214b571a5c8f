// Package rpc is movies-rpc: the legacy movie catalog served over HTTP for
// the RPC variant. ratings-rpc calls GET /movies/{id} to validate and enrich
// every rating, and GET /movies to list the catalog.
package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/ratingslab/lab/services/lib/serve"
	"github.com/ratingslab/lab/services/model"
	"github.com/ratingslab/lab/services/movies/legacydb"
)

// Catalog is what movies-rpc needs from the legacy DB (*legacydb.DB).
type Catalog interface {
	Movie(ctx context.Context, id int64) (model.Movie, error)
	Movies(ctx context.Context, offset, limit int) ([]model.Movie, int, error)
}

// Page limits of GET /movies.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// MoviesPage answers GET /movies.
type MoviesPage struct {
	Movies []model.Movie `json:"movies"`
	Total  int           `json:"total"`
	Offset int           `json:"offset"`
	Limit  int           `json:"limit"`
}

// New returns movies-rpc's API over the catalog.
func New(catalog Catalog, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &server{catalog: catalog, log: log}
	mux := http.NewServeMux()
	s.routes(mux)
	return serve.WithAPIVersion(APIVersion, mux)
}

// APIVersion is the version of this service's contract (docs/openapi/rpc.yaml).
const APIVersion = "1"

type server struct {
	catalog Catalog
	log     *slog.Logger
}

func (s *server) handleMovie() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := serve.PathID(r, "id")
		if err != nil {
			serve.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		m, err := s.catalog.Movie(r.Context(), id)
		switch {
		case errors.Is(err, legacydb.ErrNotFound):
			serve.WriteError(w, http.StatusNotFound, fmt.Sprintf("id: no movie %d", id))
		case err != nil:
			s.dbError(w, r, err)
		default:
			serve.WriteJSON(w, http.StatusOK, m)
		}
	})
}

func (s *server) handleMovies() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		offset, limit, err := serve.ParsePage(r, DefaultLimit, MaxLimit)
		if err != nil {
			serve.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		movies, total, err := s.catalog.Movies(r.Context(), offset, limit)
		if err != nil {
			s.dbError(w, r, err)
			return
		}
		if movies == nil {
			movies = []model.Movie{}
		}
		serve.WriteJSON(w, http.StatusOK, MoviesPage{Movies: movies, Total: total, Offset: offset, Limit: limit})
	})
}

// dbError answers 503: the legacy DB failing or too slow is this service
// being unavailable, which is what the caller's breaker should count.
func (s *server) dbError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() == nil {
		s.log.Warn("legacy DB query failed", "path", r.URL.Path, "err", err)
	}
	serve.WriteError(w, http.StatusServiceUnavailable, "legacy DB: "+err.Error())
}
