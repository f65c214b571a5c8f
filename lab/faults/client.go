package faults

import (
	"context"
	"net/http"
	"net/url"

	"github.com/ratingslab/lab/lab/supervisor"
)

// Client talks to the fault API of a running lab's supervisor.
type Client struct{ c *supervisor.Client }

// NewClient wraps a supervisor control API client.
func NewClient(c *supervisor.Client) *Client { return &Client{c: c} }

// Inject applies a fault.
func (c *Client) Inject(ctx context.Context, req Request) (Fault, error) {
	var f Fault
	return f, c.c.Do(ctx, http.MethodPost, "/v1/faults", req, &f)
}

// Heal heals one fault.
func (c *Client) Heal(ctx context.Context, id string) (Fault, error) {
	var f Fault
	return f, c.c.Do(ctx, http.MethodDelete, "/v1/faults/"+url.PathEscape(id), nil, &f)
}

// HealAll heals every active fault.
func (c *Client) HealAll(ctx context.Context) ([]Fault, error) {
	var fs []Fault
	return fs, c.c.Do(ctx, http.MethodDelete, "/v1/faults", nil, &fs)
}

// Get returns one fault, active or finished.
func (c *Client) Get(ctx context.Context, id string) (Fault, error) {
	var f Fault
	return f, c.c.Do(ctx, http.MethodGet, "/v1/faults/"+url.PathEscape(id), nil, &f)
}

// List returns active faults and recent history.
func (c *Client) List(ctx context.Context) (Listing, error) {
	var l Listing
	return l, c.c.Do(ctx, http.MethodGet, "/v1/faults", nil, &l)
}

// Catalog returns every fault and this lab's targets.
func (c *Client) Catalog(ctx context.Context) (CatalogInfo, error) {
	var ci CatalogInfo
	return ci, c.c.Do(ctx, http.MethodGet, "/v1/faults/catalog", nil, &ci)
}
