package rpc

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/ratingslab/lab/services/lib/breaker"
	"github.com/ratingslab/lab/services/model"
)

// ErrNotFound is movies-rpc's 404: the catalog has no such movie.
var ErrNotFound = errors.New("movie not in the catalog")

// Client calls movies-rpc through a breaker.Dependency. Its errors are
// ErrNotFound, or a *breaker.UnavailableError when movies-rpc failed, timed
// out, or its breaker is open.
type Client struct {
	api *breaker.Endpoint
}

// NewClient calls movies-rpc at api (breaker.Upstream.Connect, or breaker.NewEndpoint).
func NewClient(api *breaker.Endpoint) *Client {
	return &Client{api: api}
}

// Movie returns one movie of the catalog.
func (c *Client) Movie(ctx context.Context, id int64) (model.Movie, error) {
	var m model.Movie
	err := c.api.Call(ctx, http.MethodGet, fmt.Sprintf("/movies/%d", id), nil, &m)
	if breaker.Status(err) == http.StatusNotFound {
		return model.Movie{}, fmt.Errorf("movie %d: %w", id, ErrNotFound)
	}
	return m, err
}

// Movies returns one page of the catalog, ordered by id, and its total.
func (c *Client) Movies(ctx context.Context, offset, limit int) ([]model.Movie, int, error) {
	var page MoviesPage
	err := c.api.Call(ctx, http.MethodGet, fmt.Sprintf("/movies?offset=%d&limit=%d", offset, limit), nil, &page)
	if err != nil {
		return nil, 0, err
	}
	return page.Movies, page.Total, nil
}
