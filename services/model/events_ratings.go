package model

// The `ratings` topic: the event webserver-stream (or kcat) produces and
// ratings-stream counts.

import (
	"bytes"
	"hash/crc32"
	"strconv"
	"time"
)

// Limits of a rating event, the same as the public API's.
const (
	MinRatingTenths = 10  // 1.0
	MaxRatingTenths = 100 // 10.0
	MaxRequestIDLen = 128
)

// RatingEvent is the value of a `ratings` record; its key is the movie id in
// decimal. Rating travels as a JSON number with at most one decimal and is
// held here in exact tenths.
type RatingEvent struct {
	RequestID string
	MovieID   int64
	Tenths    int64
	UserID    int64
	EventTime time.Time // when the webserver accepted the rating
}

// NewRatingEvent is the event for a validated rating accepted at t.
func NewRatingEvent(r Rating, t time.Time) RatingEvent {
	return RatingEvent{RequestID: r.RequestID, MovieID: r.MovieID, Tenths: r.Tenths, UserID: r.UserID, EventTime: t}
}

// Rating is the rating the event carries.
func (e RatingEvent) Rating() Rating {
	return Rating{RequestID: e.RequestID, MovieID: e.MovieID, Tenths: e.Tenths, UserID: e.UserID}
}

// Key is the record key: the movie id in decimal.
func (e RatingEvent) Key() []byte { return strconv.AppendInt(nil, e.MovieID, 10) }

// MarshalJSON writes the canonical form:
//
//	{"request_id":"r-1","movie_id":42,"rating":7.5,"user_id":7,"event_time":"2026-01-02T03:04:05.123456789Z"}
func (e RatingEvent) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 160)
	b = append(b, `{"request_id":`...)
	b = strconv.AppendQuote(b, e.RequestID)
	b = append(b, `,"movie_id":`...)
	b = strconv.AppendInt(b, e.MovieID, 10)
	b = append(b, `,"rating":`...)
	b = AppendTenths(b, e.Tenths)
	b = append(b, `,"user_id":`...)
	b = strconv.AppendInt(b, e.UserID, 10)
	b = append(b, `,"event_time":"`...)
	b = e.EventTime.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `"}`...)
	return b, nil
}

// AppendTenths writes tenths as a JSON number: 75 → 7.5, 80 → 8.
func AppendTenths(b []byte, tenths int64) []byte {
	if tenths < 0 {
		b = append(b, '-')
		tenths = -tenths
	}
	b = strconv.AppendInt(b, tenths/10, 10)
	if f := tenths % 10; f != 0 {
		b = append(b, '.', byte('0'+f))
	}
	return b
}

// DecodeRatingEvent parses one `ratings` value strictly: a JSON object with
// exactly the documented field names (case-sensitive, no unknown or repeated
// fields), request_id and movie_id and rating and event_time required,
// user_id optional (default 0). Every error is an *EventError.
//
// It is hand-written rather than encoding/json because it runs once per
// event on the processor's hot path and must reject what encoding/json
// forgives (case-folded names, duplicate keys).
func DecodeRatingEvent(value []byte) (RatingEvent, error) {
	var ev RatingEvent
	p := scanner{b: value}
	p.space()
	if !p.consume('{') {
		return ev, eventErr(ReasonMalformed, "value", "want a JSON object, got %s", describe(value))
	}
	const (
		seenRequest = 1 << iota
		seenMovie
		seenRating
		seenUser
		seenTime
	)
	seen := 0
	p.space()
	if !p.consume('}') {
		for {
			p.space()
			key, ok := p.plainString()
			if !ok {
				return ev, eventErr(ReasonMalformed, "value", "bad object key at byte %d", p.i)
			}
			p.space()
			if !p.consume(':') {
				return ev, eventErr(ReasonMalformed, "value", "missing ':' after key %q", key)
			}
			p.space()
			var bit int
			var err *EventError
			switch key {
			case "request_id":
				bit = seenRequest
				ev.RequestID, err = p.requestID()
			case "movie_id":
				bit = seenMovie
				ev.MovieID, err = p.integer("movie_id")
				if err == nil && ev.MovieID <= 0 {
					err = eventErr(ReasonInvalidField, "movie_id", "must be a positive integer, got %d", ev.MovieID)
				}
			case "rating":
				bit = seenRating
				ev.Tenths, err = p.rating()
			case "user_id":
				bit = seenUser
				if p.null() {
					break // optional: null reads as absent
				}
				ev.UserID, err = p.integer("user_id")
				if err == nil && ev.UserID < 0 {
					err = eventErr(ReasonInvalidField, "user_id", "must not be negative, got %d", ev.UserID)
				}
			case "event_time":
				bit = seenTime
				ev.EventTime, err = p.eventTime()
			default:
				return ev, eventErr(ReasonInvalidField, clip(key, 40), "unknown field (allowed: request_id, movie_id, rating, user_id, event_time)")
			}
			if err != nil {
				return ev, err
			}
			if seen&bit != 0 {
				return ev, eventErr(ReasonInvalidField, key, "appears twice")
			}
			seen |= bit
			p.space()
			if p.consume(',') {
				continue
			}
			if p.consume('}') {
				break
			}
			return ev, eventErr(ReasonMalformed, "value", "want ',' or '}' after field %q at byte %d", key, p.i)
		}
	}
	p.space()
	if p.i != len(p.b) {
		return ev, eventErr(ReasonMalformed, "value", "trailing data after the object at byte %d", p.i)
	}
	for _, req := range []struct {
		bit  int
		name string
	}{{seenRequest, "request_id"}, {seenMovie, "movie_id"}, {seenRating, "rating"}, {seenTime, "event_time"}} {
		if seen&req.bit == 0 {
			return ev, eventErr(ReasonInvalidField, req.name, "is required")
		}
	}
	return ev, nil
}

// CheckRatingKey verifies a record key against its decoded event: the key
// must be the movie id in decimal, so that all of a movie's ratings share a
// partition (and the processor that owns its aggregate).
func CheckRatingKey(key []byte, ev RatingEvent) error {
	var buf [20]byte
	if !bytes.Equal(key, strconv.AppendInt(buf[:0], ev.MovieID, 10)) {
		return eventErr(ReasonKeyMismatch, "key", "must be the movie id %d in decimal, got %q", ev.MovieID, clip(string(key), 40))
	}
	return nil
}

// RatingPartition is the partition of `ratings` that a movie's ratings go
// to: CRC32 (IEEE) of the key modulo the partition count. This is kcat's and
// librdkafka's default ("consistent_random") for keyed records and kafka-go's
// CRC32Balancer, so records keyed by kcat land where the webserver puts them.
func RatingPartition(key []byte, partitions int) int {
	if partitions <= 0 {
		return 0
	}
	return int(crc32.ChecksumIEEE(key) % uint32(partitions))
}
