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

// ErrNotFound is movies-rpc's 404: the catalog has no such movie.
var ErrNotFound = errors.New("movie not in the catalog")

// Client calls movies-rpc through a breaker.Dependency. Its errors are
// ErrNotFound, or a *breaker.UnavailableError when movies-rpc failed, timed
// out, or its breaker is open.
type Client struct {
	base string
	http *http.Client
	dep  *breaker.Dependency
}

// NewClient calls movies-rpc at baseURL ("http://127.0.0.1:7731").
func NewClient(baseURL string, c *http.Client, dep *breaker.Dependency) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("movies-rpc URL %q: want http://host:port", baseURL)
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), http: c, dep: dep}, nil
}

// Movie returns one movie of the catalog.
func (c *Client) Movie(ctx context.Context, id int64) (model.Movie, error) {
	var m model.Movie
	err := c.dep.Do(ctx, func(ctx context.Context) error {
		_, err := breaker.CallJSON(ctx, c.http, http.MethodGet, fmt.Sprintf("%s/movies/%d", c.base, id), nil, &m)
		return err
	})
	if notFound(err) {
		return model.Movie{}, fmt.Errorf("movie %d: %w", id, ErrNotFound)
	}
	return m, err
}

// Movies returns one page of the catalog, ordered by id, and its total.
func (c *Client) Movies(ctx context.Context, offset, limit int) ([]model.Movie, int, error) {
	var page MoviesPage
	err := c.dep.Do(ctx, func(ctx context.Context) error {
		_, err := breaker.CallJSON(ctx, c.http, http.MethodGet, fmt.Sprintf("%s/movies?offset=%d&limit=%d", c.base, offset, limit), nil, &page)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return page.Movies, page.Total, nil
}

func notFound(err error) bool {
	var se *breaker.StatusError
	return errors.As(err, &se) && se.Status == http.StatusNotFound
}
