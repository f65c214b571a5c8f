package model

// The `rated-movies` topic: ratings-stream's aggregates, read by
// webserver-stream's view.

import (
	"encoding/json"
	"fmt"
	"time"
)

// RatedMovieEvent is the value of a `rated-movies` record (key: movie id in
// decimal): the public RatedMovie plus what a consumer of the compacted topic
// needs to order and time updates.
type RatedMovieEvent struct {
	RatedMovie
	// LastEventTime is the event time of the newest rating included.
	LastEventTime time.Time `json:"last_event_time"`
	// SourcePartition and SourceOffset say which prefix of `ratings` the
	// aggregate includes: every rating of this movie at an offset below
	// SourceOffset on SourcePartition, and none at or above it. A consumer
	// keeps, per movie, the update with the highest SourceOffset; a stale
	// re-emit (after a crash or a rebalance) is then recognised and ignored.
	SourcePartition int   `json:"source_partition"`
	SourceOffset    int64 `json:"source_offset"`
}

// DecodeRatedMovieEvent parses a `rated-movies` value.
func DecodeRatedMovieEvent(value []byte) (RatedMovieEvent, error) {
	var ev RatedMovieEvent
	if err := json.Unmarshal(value, &ev); err != nil {
		return ev, fmt.Errorf("rated-movies value: %w", err)
	}
	if ev.MovieID <= 0 || ev.Count < 0 || ev.SumTenths < 0 || ev.SourceOffset < 0 {
		return ev, fmt.Errorf("rated-movies value: movie_id %d, count %d, sum_tenths %d, source_offset %d out of range",
			ev.MovieID, ev.Count, ev.SumTenths, ev.SourceOffset)
	}
	return ev, nil
}
