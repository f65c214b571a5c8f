package rpc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/ratingslab/lab/services/lib/breaker"
	"github.com/ratingslab/lab/services/model"
)

// Errors of Client besides *breaker.UnavailableError.
var (
	ErrUnknownMovie = errors.New("unknown movie") // 422 from POST /ratings
	ErrNotFound     = errors.New("no such movie") // 404 from GET /rated-movies/{id}
)

// ConflictError is a 409 from POST /ratings: the request id was applied
// with another rating. Msg is ratings-rpc's answer, naming the first use.
type ConflictError struct{ Msg string }

func (e *ConflictError) Error() string { return e.Msg }

// Client calls ratings-rpc through a breaker.Dependency.
type Client struct {
	api      *breaker.Endpoint
	contract atomic.Pointer[model.Contract] // the request body's contract version
}

// SetContract makes Rate send bodies of contract c (the schema-change
// fault deploys a new contract on the caller while ratings-rpc keeps v1).
func (c *Client) SetContract(v model.Contract) { c.contract.Store(&v) }

// Contract is the contract Rate sends.
func (c *Client) Contract() model.Contract {
	if p := c.contract.Load(); p != nil {
		return *p
	}
	return model.ContractV1
}

// NewClient calls ratings-rpc at api (breaker.Upstream.Connect, or breaker.NewEndpoint).
func NewClient(api *breaker.Endpoint) *Client {
	return &Client{api: api}
}

// Rate applies r. Retries (when configured) are safe: ratings-rpc applies a
// request id once and answers 200 to a repeat of the same rating (and 409,
// a *ConflictError, to the id reused for another).
func (c *Client) Rate(ctx context.Context, r model.Rating) error {
	err := c.api.Call(ctx, http.MethodPost, "/ratings", rateBody(c.Contract(), r), nil)
	switch breaker.Status(err) {
	case http.StatusUnprocessableEntity:
		return fmt.Errorf("movie %d: %w", r.MovieID, ErrUnknownMovie)
	case http.StatusConflict:
		var se *breaker.StatusError
		errors.As(err, &se)
		return &ConflictError{Msg: se.Message}
	}
	return withRetryAfter(err)
}

// RatedMovies returns one page of rated movies.
func (c *Client) RatedMovies(ctx context.Context, offset, limit int) (RatedMoviesPage, error) {
	var page RatedMoviesPage
	err := c.api.Call(ctx, http.MethodGet, fmt.Sprintf("/rated-movies?offset=%d&limit=%d", offset, limit), nil, &page)
	return page, withRetryAfter(err)
}

// RatedMovie returns one rated movie, or ErrNotFound.
func (c *Client) RatedMovie(ctx context.Context, id int64) (model.RatedMovie, error) {
	var m model.RatedMovie
	err := c.api.Call(ctx, http.MethodGet, fmt.Sprintf("/rated-movies/%d", id), nil, &m)
	if breaker.Status(err) == http.StatusNotFound {
		return model.RatedMovie{}, fmt.Errorf("movie %d: %w", id, ErrNotFound)
	}
	return m, withRetryAfter(err)
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
