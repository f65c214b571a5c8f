// Package model holds the domain types both integration patterns share: the
// legacy catalog's Movie, a Rating as users submit it, the per-movie
// CountAndSum, and the RatedMovie both variants serve.
package model

import (
	"fmt"
	"strconv"
	"time"
)

// Topic names of the log variant.
const (
	TopicRatings      = "ratings"      // key: movie id; value: RatingEvent
	TopicMovies       = "movies"       // compacted; key: movie id; value: Movie (empty value = tombstone)
	TopicRatedMovies  = "rated-movies" // compacted; key: movie id; value: RatedMovie
	TopicRatingsDLQ   = "ratings-dlq"  // events the processor could not process; reason in headers
	RatingsPartitions = 6
)

// TopicRatingsChangelog is ratings-stream's state (compacted; partition p is
// the state of ratings partition p), written in Kafka transactions by
// --delivery=transactional (services/lib/kafkaio/changelog).
const TopicRatingsChangelog = "ratings-stream-changelog"

// TopicRatingsRequestIDs is the request-id record behind ratings-stream's
// state (partition p: the request ids counted on ratings partition p),
// written in the same transactions as the changelog. Every entry stays
// valid until it expires, so the topic is time-retained, not compacted
// (docs/events.md).
const TopicRatingsRequestIDs = "ratings-stream-request-ids"

// RequestIDsRetention is TopicRatingsRequestIDs' retention.ms: twice
// ratings-stream's default --request-id-retention (15 minutes), so that a
// processor up to 15 minutes behind the log still finds every entry it
// needs after a take-over. ratings-stream refuses to start when the topic
// keeps its records for less than its --request-id-retention.
const RequestIDsRetention = 30 * time.Minute

// Topic is one topic of the log variant with its partition count and configs.
type Topic struct {
	Name       string
	Partitions int32
	Configs    map[string]string
}

// Topics are every topic the lab creates (the embedded broker at start, and
// any tool creating them on a real cluster: take the configs from here).
// Compacted topics keep the latest value per key, so a new consumer can
// rebuild a table from them.
//
// Every topic but one keeps its records forever (retention.ms=-1,
// retention.bytes=-1): the log is the lab's recording, and rebuilds, forks
// and imports of old records depend on it. Kafka's default (7 days) would trim `ratings`, and
// kfake applies time retention to compacted topics too. Compacted topics
// still drop tombstones after delete.retention.ms (Kafka's default, 1 day),
// which loses nothing: a tombstone's key has no value left to rebuild.
// The exception is TopicRatingsRequestIDs, whose entries expire by time:
// it keeps them for RequestIDsRetention and drops whole old batches.
var Topics = []Topic{
	{Name: TopicRatings, Partitions: RatingsPartitions, Configs: keptForever(nil)},
	{Name: TopicMovies, Partitions: 1, Configs: keptForever(map[string]string{"cleanup.policy": "compact"})},
	{Name: TopicRatedMovies, Partitions: RatingsPartitions, Configs: keptForever(map[string]string{"cleanup.policy": "compact"})},
	{Name: TopicRatingsDLQ, Partitions: 1, Configs: keptForever(nil)},
	// Co-partitioned with ratings. Real Kafka compacts closed segments only:
	// a segment rolls every minute so that a restore reads little more than
	// the current state (kfake compacts all but the last batch).
	{Name: TopicRatingsChangelog, Partitions: RatingsPartitions, Configs: keptForever(map[string]string{"cleanup.policy": "compact", "segment.ms": "60000"})},
	// Co-partitioned with ratings. Real Kafka deletes closed segments
	// only: a segment rolls every minute so that retention drops expired
	// entries within a minute of RequestIDsRetention.
	{Name: TopicRatingsRequestIDs, Partitions: RatingsPartitions, Configs: map[string]string{"cleanup.policy": "delete",
		"retention.ms": strconv.FormatInt(RequestIDsRetention.Milliseconds(), 10), "retention.bytes": "-1", "segment.ms": "60000"}},
}

// keptForever adds unlimited retention (time and size) to a topic's configs.
func keptForever(configs map[string]string) map[string]string {
	out := map[string]string{"retention.ms": "-1", "retention.bytes": "-1"}
	for k, v := range configs {
		out[k] = v
	}
	return out
}

// Movie is one film of the legacy catalog.
type Movie struct {
	ID          int64     `json:"movie_id"`
	Title       string    `json:"title"`
	ReleaseYear int       `json:"release_year"`
	Country     string    `json:"country,omitempty"`
	Genres      []string  `json:"genres,omitempty"`
	UpdatedAt   time.Time `json:"updated_at"`
	Version     int64     `json:"version"`
}

// Rating is one user's rating of one movie. Rating is carried in tenths
// (Tenths) so that sums are exact integers; the API accepts 1..10 with at
// most one decimal.
type Rating struct {
	RequestID string `json:"request_id"`
	MovieID   int64  `json:"movie_id"`
	Tenths    int64  `json:"-"`
	UserID    int64  `json:"user_id,omitempty"`
}

// SamePayload reports whether o names the same rating as r: the same
// movie, value and user (the request ids aside).
func (r Rating) SamePayload(o Rating) bool {
	return r.MovieID == o.MovieID && r.Tenths == o.Tenths && r.UserID == o.UserID
}

// RequestIDConflict is the error both variants answer (409) when a request
// id that named one rating comes with another: it names the first use.
func RequestIDConflict(requestID string, first Rating, at time.Time) string {
	return fmt.Sprintf("request_id: %q already names another rating (movie %d, rating %s, user %d, first accepted %s); a request id names one rating: send this one with a new request_id",
		requestID, first.MovieID, AppendTenths(nil, first.Tenths), first.UserID, at.UTC().Format(time.RFC3339Nano))
}

// CountAndSum is the running aggregate per movie. Sum is in tenths of a point.
type CountAndSum struct {
	Count    int64 `json:"count"`
	SumTenth int64 `json:"sum_tenths"`
}

// RatedMovie is what both variants serve for a movie: the catalog fields plus
// the aggregate. Sum and Average are derived from exact integer tenths.
type RatedMovie struct {
	MovieID     int64   `json:"movie_id"`
	Title       string  `json:"title"`
	ReleaseYear int     `json:"release_year"`
	Count       int64   `json:"count"`
	Sum         float64 `json:"sum"`
	Average     float64 `json:"average"`
	SumTenths   int64   `json:"sum_tenths"`
}

// NewRatedMovie derives the public fields from the exact aggregate.
func NewRatedMovie(m Movie, cs CountAndSum) RatedMovie {
	rm := RatedMovie{MovieID: m.ID, Title: m.Title, ReleaseYear: m.ReleaseYear,
		Count: cs.Count, SumTenths: cs.SumTenth, Sum: float64(cs.SumTenth) / 10}
	if cs.Count > 0 {
		rm.Average = float64(cs.SumTenth) / 10 / float64(cs.Count)
	}
	return rm
}
