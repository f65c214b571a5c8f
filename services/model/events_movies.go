package model

// The `movies` topic: the catalog movies-connect streams from the legacy DB.

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// DecodeMovie parses a `movies` value (a Movie as JSON). An empty value is a
// tombstone and is reported with ok=false and no error.
func DecodeMovie(value []byte) (m Movie, ok bool, err error) {
	if len(value) == 0 {
		return m, false, nil
	}
	if err := json.Unmarshal(value, &m); err != nil {
		return m, false, fmt.Errorf("movies value: %w", err)
	}
	if m.ID <= 0 {
		return m, false, fmt.Errorf("movies value: movie_id %d must be positive", m.ID)
	}
	return m, true, nil
}

// ParseMovieKey reads a record key holding a movie id in decimal.
func ParseMovieKey(key []byte) (int64, error) {
	id, err := strconv.ParseInt(string(key), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("key %q is not a positive movie id", clip(string(key), 40))
	}
	return id, nil
}
