// Package rpc is ratings-rpc: the ratings service of the RPC variant. It
// validates and enriches every rating by calling movies-rpc (through a
// timeout and a circuit breaker), applies it exactly once per request id to
// count+sum per movie in its own SQLite file, and serves the rated movies.
package rpc

import "github.com/ratingslab/lab/services/model"

// Wire types of ratings-rpc's API, shared with its Client.

// RateRequest is the body of POST /ratings.
type RateRequest struct {
	RequestID    string `json:"request_id"`
	MovieID      int64  `json:"movie_id"`
	RatingTenths int64  `json:"rating_tenths"`
	UserID       int64  `json:"user_id,omitempty"`
}

// RateAnswer answers POST /ratings: 201 applied now, 200 applied before.
type RateAnswer struct {
	RequestID string `json:"request_id"`
	Applied   bool   `json:"applied"`
}

// RatedMoviesPage answers GET /rated-movies. Source says where the titles
// and the list came from: "catalog" (movies-rpc's page, merged with the
// aggregates: every movie, rated or not) or "cache" (movies-rpc unavailable:
// only the movies rated so far, with the titles cached when they were rated).
type RatedMoviesPage struct {
	Movies []model.RatedMovie `json:"movies"`
	Total  int                `json:"total"`
	Offset int                `json:"offset"`
	Limit  int                `json:"limit"`
	Source string             `json:"source"`
}

// ErrorAnswer is every error; RetryAfter (seconds) comes with 503.
type ErrorAnswer struct {
	Error      string   `json:"error"`
	RetryAfter *float64 `json:"retry_after,omitempty"`
}

// Page limits of GET /rated-movies (the public API's limits).
const (
	DefaultLimit = 50
	MaxLimit     = 500
)
