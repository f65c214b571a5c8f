package webserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/ratingslab/lab/services/model"
)

func (s *server) handleRate() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rating, err := DecodeRating(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.BackendTimeout)
		defer cancel()
		err = s.backend.Rate(ctx, rating)
		var conflict *ConflictError
		switch {
		case errors.Is(err, ErrUnknownMovie):
			writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("movie_id: unknown movie %d", rating.MovieID))
		case errors.As(err, &conflict):
			writeError(w, http.StatusConflict, conflict.Msg)
		case outcomeUnknown(err):
			s.writeOutcomeUnknown(w, err, fmt.Sprintf("rating movie %d", rating.MovieID))
		case err != nil:
			s.writeBackendError(w, r, err, fmt.Sprintf("rating movie %d", rating.MovieID))
		default:
			writeJSON(w, s.opts.AcceptedStatus, RateResponse{RequestID: rating.RequestID, MovieID: rating.MovieID})
		}
	})
}

func (s *server) handleMovies() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, err := ParsePage(r.URL.RawQuery, true)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.BackendTimeout)
		defer cancel()
		movies, total, err := s.backend.Movies(ctx, page.Offset, page.Limit)
		if err != nil {
			s.writeBackendError(w, r, err, "listing movies")
			return
		}
		if movies == nil {
			movies = []model.RatedMovie{} // "movies": [] rather than null
		}
		writeJSON(w, http.StatusOK, MoviesPage{Movies: movies, Total: total, Offset: page.Offset, Limit: page.Limit})
	})
}

func (s *server) handleMovie() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := ParseMovieID(r.PathValue("id"))
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.BackendTimeout)
		defer cancel()
		movie, err := s.backend.Movie(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrUnknownMovie):
			writeError(w, http.StatusNotFound, fmt.Sprintf("id: no movie %d", id))
		case err != nil:
			s.writeBackendError(w, r, err, fmt.Sprintf("reading movie %d", id))
		default:
			writeJSON(w, http.StatusOK, movie)
		}
	})
}
