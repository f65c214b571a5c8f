package stream

import (
	"context"
	"fmt"
	"time"

	"github.com/ratingslab/lab/services/model"
)

// catchUpMovies is called with how many ratings of a batch name a movie
// the table does not know. The webserver checked the movie against its own
// table, which may be ahead of ours: catch up with the movies topic
// (bounded) before calling a movie unknown.
func (p *Processor) catchUpMovies(ctx context.Context, unknown int) error {
	if unknown == 0 {
		return nil
	}
	if p.testHookBeforeCatchUp != nil {
		p.testHookBeforeCatchUp()
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := p.movies.tailer.WaitCaughtUp(wctx)
	cancel()
	if err != nil {
		return fmt.Errorf("cannot confirm %d unknown movie(s) against the movies topic: %w", unknown, err)
	}
	return nil
}

// unknownMovie is the dead-letter reason of a rating of a movie the table
// does not hold even after catching up.
func unknownMovie(movieID int64) error {
	return &model.EventError{Reason: model.ReasonUnknownMovie, Field: "movie_id",
		Msg: fmt.Sprintf("movie %d is not in the movies table", movieID)}
}

// requestIDConflict is the dead-letter reason of a rating whose request id
// was counted for another rating at offset first of its partition.
func requestIDConflict(requestID string, first int64) error {
	return &model.EventError{Reason: model.ReasonRequestIDConflict, Field: "request_id",
		Msg: fmt.Sprintf("%q was counted for another rating at offset %d of this partition; a request id names one rating", requestID, first)}
}
