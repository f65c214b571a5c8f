package rpc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/ratingslab/lab/services/breaker"
	"github.com/ratingslab/lab/services/model"
)

// Errors of Client besides *breaker.UnavailableError.
var (
	ErrUnknownMovie = errors.New("unknown movie") // 422 from POST /ratings
	ErrNotFound     = errors.New("no such movie") // 404 from GET /rated-movies/{id}
)

// Client calls ratings-rpc through a breaker.Dependency.
type Client struct {
	base string
	http *http.Client
	dep  *breaker.Dependency
}

// NewClient calls ratings-rpc at baseURL ("http://127.0.0.1:7730").
func NewClient(baseURL string, c *http.Client, dep *breaker.Dependency) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("ratings-rpc URL %q: want http://host:port", baseURL)
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), http: c, dep: dep}, nil
}

// Rate applies r. Retries (when configured) are safe: ratings-rpc applies a
// request id once and answers 200 to a repeat.
func (c *Client) Rate(ctx context.Context, r model.Rating) error {
	req := RateRequest{RequestID: r.RequestID, MovieID: r.MovieID, RatingTenths: r.Tenths, UserID: r.UserID}
	err := c.dep.Do(ctx, func(ctx context.Context) error {
		_, err := breaker.CallJSON(ctx, c.http, http.MethodPost, c.base+"/ratings", req, nil)
		return err
	})
	if status(err) == http.StatusUnprocessableEntity {
		return fmt.Errorf("movie %d: %w", r.MovieID, ErrUnknownMovie)
	}
	return withRetryAfter(err)
}

// RatedMovies returns one page of rated movies.
func (c *Client) RatedMovies(ctx context.Context, offset, limit int) (RatedMoviesPage, error) {
	var page RatedMoviesPage
	err := c.dep.Do(ctx, func(ctx context.Context) error {
		_, err := breaker.CallJSON(ctx, c.http, http.MethodGet, fmt.Sprintf("%s/rated-movies?offset=%d&limit=%d", c.base, offset, limit), nil, &page)
		return err
	})
	return page, withRetryAfter(err)
}

// RatedMovie returns one rated movie, or ErrNotFound.
func (c *Client) RatedMovie(ctx context.Context, id int64) (model.RatedMovie, error) {
	var m model.RatedMovie
	err := c.dep.Do(ctx, func(ctx context.Context) error {
		_, err := breaker.CallJSON(ctx, c.http, http.MethodGet, fmt.Sprintf("%s/rated-movies/%d", c.base, id), nil, &m)
		return err
	})
	if status(err) == http.StatusNotFound {
		return model.RatedMovie{}, fmt.Errorf("movie %d: %w", id, ErrNotFound)
	}
	return m, withRetryAfter(err)
}

func status(err error) int {
	var se *breaker.StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	return 0
}

// withRetryAfter passes on ratings-rpc's own retry_after (from a 503 it
// answered because movies-rpc is down) when it is later than our hint.
func withRetryAfter(err error) error {
	var ue *breaker.UnavailableError
	var se *breaker.StatusError
	if !errors.As(err, &ue) || !errors.As(err, &se) || se.Status != http.StatusServiceUnavailable {
		return err
	}
	if d := se.RetryAfter; d > ue.RetryAfter {
		ue.RetryAfter = d
	}
	return err
}
