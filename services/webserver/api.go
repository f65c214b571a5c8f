package webserver

import (
	"encoding/json"

	"github.com/ratingslab/lab/services/model"
)

// Wire types of the public API (docs/api.md). Both variants answer with these
// exact shapes, so one load profile and one audit read both.

// RateRequest is the body of POST /api/ratings. Fields are pointers or raw so
// the decoder can tell "absent" from "zero" and name the offending field.
type RateRequest struct {
	MovieID   *int64          `json:"movie_id"`
	Rating    json.RawMessage `json:"rating"` // a JSON number 1..10, one decimal at most (see DecodeRating)
	UserID    *int64          `json:"user_id,omitempty"`
	RequestID *string         `json:"request_id,omitempty"`
}

// RateResponse answers an accepted rating (201 in rpc, 202 in stream).
type RateResponse struct {
	RequestID string `json:"request_id"`
	MovieID   int64  `json:"movie_id"`
}

// MoviesPage answers GET /api/movies.
type MoviesPage struct {
	Movies []model.RatedMovie `json:"movies"`
	Total  int                `json:"total"`
	Offset int                `json:"offset"`
	Limit  int                `json:"limit"`
}

// ErrorBody is every error answer. RetryAfter (seconds) is set on 503 and
// 504; Outcome is "unknown" on a 504 (docs/api.md, "Outcomes").
type ErrorBody struct {
	Error      string   `json:"error"`
	RetryAfter *float64 `json:"retry_after,omitempty"`
	Outcome    string   `json:"outcome,omitempty"`
}

// OutcomeUnknown is ErrorBody.Outcome of a 504: the webserver cannot tell
// whether the rating was applied.
const OutcomeUnknown = "unknown"

// Limits of the public API.
const (
	MaxBodyBytes     = 64 << 10 // POST bodies above this are rejected with 400
	DefaultPageLimit = 50
	MaxPageLimit     = 500
	MaxRequestIDLen  = 128
	MinRatingTenths  = 10  // 1.0
	MaxRatingTenths  = 100 // 10.0
)
