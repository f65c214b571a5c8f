// Package rpc is webserver-rpc: the shared public API and page
// (services/webserver) over a Backend that calls ratings-rpc synchronously,
// through a timeout and a circuit breaker.
package rpc

import (
	"context"
	"errors"
	"fmt"

	"github.com/ratingslab/lab/services/lib/breaker"
	"github.com/ratingslab/lab/services/model"
	ratingsrpc "github.com/ratingslab/lab/services/ratings/rpc"
	"github.com/ratingslab/lab/services/webserver"
)

// Backend implements webserver.Backend by calling ratings-rpc: a rating is
// acknowledged (201) only after ratings-rpc committed it.
type Backend struct {
	ratings *ratingsrpc.Client
	dep     *breaker.Dependency
}

var _ webserver.Backend = (*Backend)(nil)

func NewBackend(ratings *ratingsrpc.Client, dep *breaker.Dependency) *Backend {
	return &Backend{ratings: ratings, dep: dep}
}

func (b *Backend) Rate(ctx context.Context, r model.Rating) error {
	err := b.ratings.Rate(ctx, r)
	if errors.Is(err, ratingsrpc.ErrUnknownMovie) {
		return webserver.ErrUnknownMovie
	}
	if ce, ok := errors.AsType[*ratingsrpc.ConflictError](err); ok {
		return &webserver.ConflictError{Msg: ce.Msg}
	}
	return translate(err)
}

func (b *Backend) Movies(ctx context.Context, offset, limit int) ([]model.RatedMovie, int, error) {
	page, err := b.ratings.RatedMovies(ctx, offset, limit)
	if err != nil {
		return nil, 0, translate(err)
	}
	return page.Movies, page.Total, nil
}

func (b *Backend) Movie(ctx context.Context, id int64) (model.RatedMovie, error) {
	m, err := b.ratings.RatedMovie(ctx, id)
	if errors.Is(err, ratingsrpc.ErrNotFound) {
		return model.RatedMovie{}, webserver.ErrNotFound
	}
	return m, translate(err)
}

// Ready is cheap on purpose (health checks run every second): it reports
// not ready only while the breakers of both operations to ratings-rpc are
// open (nothing can be served); one open breaker is a warning (Warning).
func (b *Backend) Ready(context.Context) error {
	if b.dep.State(breaker.Read) == "open" && b.dep.State(breaker.Write) == "open" {
		return errors.New("circuit breakers to ratings-rpc are open (reads and writes)")
	}
	return nil
}

// Warning names an open breaker while the other operation still works, for
// /healthz's "warning" (shown by `lab status`); "" when none is.
func (b *Backend) Warning() string {
	for _, op := range breaker.Operations {
		if b.dep.State(op) == "open" {
			return fmt.Sprintf("circuit breaker to ratings-rpc is open for %ss", op)
		}
	}
	return ""
}

// translate turns the breaker's unavailability into the web layer's, which
// the API answers with 503 and retry_after — or, for a rating that reached
// ratings-rpc without an answer, 504 "outcome unknown".
func translate(err error) error {
	var ue *breaker.UnavailableError
	if errors.As(err, &ue) {
		return &webserver.UnavailableError{Dependency: ue.Dependency, RetryAfter: ue.RetryAfter, Err: ue.Err, OutcomeUnknown: ue.OutcomeUnknown}
	}
	if status := breaker.Status(err); status >= 400 && status < 500 {
		// ratings-rpc refused what this webserver sent (a contract the two
		// no longer share): a definite failure, with ratings-rpc's reason.
		return &webserver.RefusedError{Err: fmt.Errorf("ratings-rpc answered %d: %w", status, err)}
	}
	return err
}
