package stream

import (
	"errors"
	"fmt"

	"github.com/ratingslab/lab/services/model"
)

// transient returns the error to retry with when a decode failed because
// the schema registry could not be asked (not an *EventError): such a
// record is not bad, so it must not be dead-lettered; the batch is retried
// after the generation restarts. A bad record returns nil.
func transient(err error) error {
	var bad *model.EventError
	if err == nil || errors.As(err, &bad) {
		return nil
	}
	return fmt.Errorf("cannot decode a record now (retrying): %w", err)
}
