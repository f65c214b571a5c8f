package stream

import (
	"context"
	"errors"
	"time"

	"github.com/ratingslab/lab/services/lib/eventformat"
	"github.com/ratingslab/lab/services/model"
	"github.com/ratingslab/lab/services/webserver"
)

// contractError maps a failure to encode a rating: a registry that refused
// the producer's schema is a definite failure (500, nothing produced); a
// registry that cannot be reached is a dependency outage (503).
func contractError(err error) error {
	var refused *eventformat.RefusedError
	if errors.As(err, &refused) {
		return &webserver.RefusedError{Err: err}
	}
	return &webserver.UnavailableError{Dependency: "schema registry", RetryAfter: time.Second, Err: err}
}

// contracts deploys rating contracts on the producer's codec: in Avro the
// new schema is registered at once, so the answer carries the registry's
// decision.
type contracts struct{ codec *model.Codec }

func (c contracts) Current() webserver.ContractAnswer {
	return webserver.ContractAnswer{Contract: c.codec.Contract(), Format: string(c.codec.Format())}
}

func (c contracts) Deploy(ctx context.Context, v model.Contract) webserver.ContractAnswer {
	err := c.codec.SetContract(ctx, v)
	a := c.Current()
	if c.codec.Format() != model.FormatAvro {
		return a
	}
	var refused *eventformat.RefusedError
	switch {
	case err == nil:
		a.Registry = "accepted"
	case errors.As(err, &refused):
		a.Registry, a.Detail = "refused", err.Error()
	default:
		a.Registry, a.Detail = "unreachable", err.Error()
	}
	return a
}
