// Package webserver is the public face of both variants: one JSON API and one
// HTML page. What differs between the variants is only the Backend behind it:
// rpc.Backend calls the ratings service synchronously; stream.Backend produces
// to the log and reads its own view hydrated from the log.
package webserver

import (
	"context"
	"errors"
	"time"

	"github.com/ratingslab/lab/services/model"
)

// Backend is the integration seam between the shared web layer and a variant.
type Backend interface {
	// Rate records a validated rating, once per request id. It returns
	// ErrUnknownMovie when the movie does not exist, a *ConflictError when
	// the request id named another rating, or an *UnavailableError when a
	// dependency (the ratings service, the broker) did not take it within
	// its timeout — with OutcomeUnknown set when the rating may have been
	// recorded anyway. A repeat of an accepted rating returns nil.
	Rate(ctx context.Context, r model.Rating) error
	// Movies returns one page of rated movies ordered by movie id, and the total.
	Movies(ctx context.Context, offset, limit int) ([]model.RatedMovie, int, error)
	// Movie returns one rated movie, or ErrNotFound.
	Movie(ctx context.Context, id int64) (model.RatedMovie, error)
	// Ready reports whether the backend can serve (used by /healthz).
	Ready(ctx context.Context) error
}

var (
	ErrUnknownMovie = errors.New("unknown movie")
	ErrNotFound     = errors.New("not found")
)

// ConflictError says the request id was used before and cannot take this
// request (docs/api.md, idempotency): it named another rating, or its first
// use has an unknown outcome and is too old to retry safely. The API
// answers 409 with Msg, which names the first use.
type ConflictError struct {
	Msg string
}

func (e *ConflictError) Error() string { return e.Msg }

// UnavailableError says a dependency could not answer; the API maps it to 503
// with retry_after, or for a rating whose OutcomeUnknown is set to 504
// {"outcome":"unknown"}.
type UnavailableError struct {
	Dependency string
	RetryAfter time.Duration
	Err        error
	// OutcomeUnknown: the write reached the dependency (or may have) and
	// no answer came; it may be applied. False: certainly not applied.
	OutcomeUnknown bool
}

func (e *UnavailableError) Error() string {
	return e.Dependency + " unavailable: " + e.Err.Error()
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// RefusedError is a definite failure whose reason the caller should see
// (500 with the message): nothing was written, and retrying the same
// request will fail the same way until the backend is fixed — e.g. the
// schema registry refused the producer's new contract.
type RefusedError struct {
	Err error
}

func (e *RefusedError) Error() string { return e.Err.Error() }

func (e *RefusedError) Unwrap() error { return e.Err }
