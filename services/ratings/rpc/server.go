package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/ratingslab/lab/services/lib/breaker"
	"github.com/ratingslab/lab/services/lib/serve"
	"github.com/ratingslab/lab/services/model"
	moviesrpc "github.com/ratingslab/lab/services/movies/rpc"
)

// Catalog is what ratings-rpc asks movies-rpc (*moviesrpc.Client).
type Catalog interface {
	Movie(ctx context.Context, id int64) (model.Movie, error)
	Movies(ctx context.Context, offset, limit int) ([]model.Movie, int, error)
}

// New returns ratings-rpc's API.
func New(store *Store, catalog Catalog, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &server{store: store, catalog: catalog, log: log}
	mux := http.NewServeMux()
	s.routes(mux)
	return serve.WithAPIVersion(APIVersion, mux)
}

// APIVersion is the version of this service's contract (docs/openapi/rpc.yaml).
const APIVersion = "1"

type server struct {
	store   *Store
	catalog Catalog
	log     *slog.Logger
}

// maxRateBody bounds POST /ratings bodies; the public API already capped
// the client's body at 64 KiB and this one is a few dozen bytes.
const maxRateBody = 16 << 10

// handleRate applies one rating:
//
//	400 bad body · 200 request id applied before with the same rating
//	(movies-rpc not asked) · 409 request id applied before with another
//	rating · 422 movie not in the catalog · 503 movies-rpc unavailable ·
//	201 applied
func (s *server) handleRate() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rating, err := decodeRate(w, r)
		if err != nil {
			serve.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		// A retry of an applied request is answered from the store alone, so
		// it succeeds even while movies-rpc is down.
		if s.answerRepeat(w, r, rating) {
			return
		}
		movie, err := s.catalog.Movie(r.Context(), rating.MovieID)
		if errors.Is(err, moviesrpc.ErrNotFound) {
			serve.WriteError(w, http.StatusUnprocessableEntity, fmt.Sprintf("movie_id: unknown movie %d", rating.MovieID))
			return
		}
		if err != nil {
			s.catalogError(w, err)
			return
		}
		applied, err := s.store.Apply(r.Context(), rating, movie)
		if err != nil {
			s.storeError(w, r, err)
			return
		}
		if !applied && s.answerRepeat(w, r, rating) {
			return // a concurrent request with the same id won the race
		}
		serve.WriteJSON(w, http.StatusCreated, RateAnswer{RequestID: rating.RequestID, Applied: true})
	})
}

// answerRepeat answers a request id applied before: 200 (applied: false)
// for the same rating, 409 naming the first use for another. It reports
// whether it answered.
func (s *server) answerRepeat(w http.ResponseWriter, r *http.Request, rating model.Rating) bool {
	first, at, found, err := s.store.FirstUse(r.Context(), rating.RequestID)
	switch {
	case err != nil:
		s.storeError(w, r, err)
	case !found:
		return false
	case !first.SamePayload(rating):
		serve.WriteError(w, http.StatusConflict, model.RequestIDConflict(rating.RequestID, first, at))
	default:
		serve.WriteJSON(w, http.StatusOK, RateAnswer{RequestID: rating.RequestID, Applied: false})
	}
	return true
}

func decodeRate(w http.ResponseWriter, r *http.Request) (model.Rating, error) {
	var req RateRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRateBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return model.Rating{}, fmt.Errorf("body: %v", err)
	}
	switch {
	case req.RequestID == "" || len(req.RequestID) > 128:
		return model.Rating{}, fmt.Errorf("request_id: must be 1 to 128 characters, got %d", len(req.RequestID))
	case req.MovieID <= 0:
		return model.Rating{}, fmt.Errorf("movie_id: must be a positive integer, got %d", req.MovieID)
	case req.RatingTenths < 10 || req.RatingTenths > 100:
		return model.Rating{}, fmt.Errorf("rating_tenths: must be from 10 to 100, got %d", req.RatingTenths)
	case req.UserID < 0:
		return model.Rating{}, fmt.Errorf("user_id: must not be negative, got %d", req.UserID)
	}
	return model.Rating{RequestID: req.RequestID, MovieID: req.MovieID, Tenths: req.RatingTenths, UserID: req.UserID}, nil
}

// handleRatedMovies lists every movie of the catalog page with its count and
// sum. When movies-rpc is unavailable the list falls back to the movies rated
// so far (source "cache"): fewer rows, but every count is still exact.
func (s *server) handleRatedMovies() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		offset, limit, err := serve.ParsePage(r, DefaultLimit, MaxLimit)
		if err != nil {
			serve.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		page := RatedMoviesPage{Offset: offset, Limit: limit, Source: "catalog", Movies: []model.RatedMovie{}}
		movies, total, err := s.catalog.Movies(r.Context(), offset, limit)
		var unavailable *breaker.UnavailableError
		switch {
		case errors.As(err, &unavailable) && r.Context().Err() == nil:
			cached, cachedTotal, err := s.store.RatedMovies(r.Context(), offset, limit)
			if err != nil {
				s.storeError(w, r, err)
				return
			}
			page.Source, page.Total = "cache", cachedTotal
			page.Movies = append(page.Movies, cached...)
		case err != nil:
			s.catalogError(w, err)
			return
		default:
			ids := make([]int64, len(movies))
			for i, m := range movies {
				ids[i] = m.ID
			}
			aggs, err := s.store.Aggregates(r.Context(), ids)
			if err != nil {
				s.storeError(w, r, err)
				return
			}
			for _, m := range movies {
				page.Movies = append(page.Movies, model.NewRatedMovie(m, aggs[m.ID]))
			}
			page.Total = total
		}
		serve.WriteJSON(w, http.StatusOK, page)
	})
}

// handleRatedMovie answers one movie. A rated movie is answered from the
// store alone (its title was cached when it was rated); an unrated one needs
// movies-rpc to tell "count 0" from "no such movie".
func (s *server) handleRatedMovie() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := serve.PathID(r, "id")
		if err != nil {
			serve.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		rm, found, err := s.store.RatedMovie(r.Context(), id)
		if err != nil {
			s.storeError(w, r, err)
			return
		}
		if found {
			serve.WriteJSON(w, http.StatusOK, rm)
			return
		}
		m, err := s.catalog.Movie(r.Context(), id)
		switch {
		case errors.Is(err, moviesrpc.ErrNotFound):
			serve.WriteError(w, http.StatusNotFound, fmt.Sprintf("id: no movie %d", id))
		case err != nil:
			s.catalogError(w, err)
		default:
			serve.WriteJSON(w, http.StatusOK, model.NewRatedMovie(m, model.CountAndSum{}))
		}
	})
}

// catalogError answers 503 when movies-rpc could not answer, naming it and
// suggesting when to retry; anything else from it is a 502.
func (s *server) catalogError(w http.ResponseWriter, err error) {
	var unavailable *breaker.UnavailableError
	if errors.As(err, &unavailable) {
		// ratings-rpc itself is fine: callers' breakers must not count this.
		w.Header().Set(breaker.PassedOnHeader, unavailable.Dependency)
		writeUnavailable(w, err.Error(), unavailable.RetryAfter)
		return
	}
	s.log.Warn("movies-rpc answered unexpectedly", "err", err)
	serve.WriteError(w, http.StatusBadGateway, "movies-rpc: "+err.Error())
}

func (s *server) storeError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		writeUnavailable(w, "request cancelled", time.Second)
		return
	}
	s.log.Error("ratings store failed", "err", err)
	writeUnavailable(w, "ratings store: "+err.Error(), time.Second)
}

func writeUnavailable(w http.ResponseWriter, msg string, retryAfter time.Duration) {
	secs := retryAfter.Seconds()
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(secs))))
	serve.WriteJSON(w, http.StatusServiceUnavailable, ErrorAnswer{Error: msg, RetryAfter: &secs})
}
