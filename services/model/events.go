package model

// Wire formats of the log variant's events (docs/events.md). The processor
// must count an event produced by kcat exactly like one produced by the
// webserver, so the formats are spelled out here once, with a strict decoder
// that names the offending field: the reason ends up in a DLQ header.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math/big"
	"strconv"
	"time"
	"unicode/utf8"
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

// EventError is an event the processor cannot count. Reason is a short,
// bounded code (a metric label and the DLQ "dlq-reason" header); Error()
// names the field and what was wrong with it.
type EventError struct {
	Reason string // one of the Reason* constants
	Field  string // JSON field, or "value"/"key" for the record as a whole
	Msg    string
}

// Reasons an event goes to the DLQ. Keep the set small: they are label values.
const (
	ReasonMalformed      = "malformed"       // not a JSON object of the documented shape
	ReasonInvalidField   = "invalid-field"   // a field has the wrong type or is missing
	ReasonRatingRange    = "rating-range"    // rating outside 1..10 or with more than one decimal
	ReasonUnknownMovie   = "unknown-movie"   // movie id not in the movies table
	ReasonKeyMismatch    = "key-mismatch"    // record key is not the value's movie id
	ReasonWrongPartition = "wrong-partition" // record is not on the partition its key maps to
	// ReasonRequestIDConflict: the request id was already counted for
	// another rating (docs/api.md: a request id names one rating).
	ReasonRequestIDConflict = "request-id-conflict"
)

// DLQReasons lists every Reason* value (metrics export each from 0).
var DLQReasons = []string{ReasonMalformed, ReasonInvalidField, ReasonRatingRange, ReasonUnknownMovie,
	ReasonKeyMismatch, ReasonWrongPartition, ReasonRequestIDConflict,
	ReasonWrongMagicByte, ReasonUnknownSchema, ReasonIncompatibleSchema, ReasonTruncated}

func (e *EventError) Error() string { return e.Field + ": " + e.Msg }

func eventErr(reason, field, format string, args ...any) *EventError {
	return &EventError{Reason: reason, Field: field, Msg: fmt.Sprintf(format, args...)}
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

// scanner walks one flat JSON object without allocating for the common case.
type scanner struct {
	b []byte
	i int
}

func (p *scanner) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *scanner) null() bool {
	if bytes.HasPrefix(p.b[p.i:], []byte("null")) {
		p.i += 4
		return true
	}
	return false
}

func (p *scanner) consume(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// plainString reads a JSON string without escapes (all our keys and valid
// request ids are plain), returning its bytes as a string.
func (p *scanner) plainString() (string, bool) {
	if !p.consume('"') {
		return "", false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := string(p.b[start:p.i])
			p.i++
			return s, true
		case c == '\\' || c < 0x20:
			return "", false
		}
		p.i++
	}
	return "", false
}

// value skips one JSON value of any type and returns its text, so that a
// wrong-typed field can be described.
func (p *scanner) value() []byte {
	start := p.i
	dec := json.NewDecoder(bytes.NewReader(p.b[p.i:]))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		p.i = len(p.b)
		return p.b[start:]
	}
	p.i = start + int(dec.InputOffset())
	return raw
}

func (p *scanner) requestID() (string, *EventError) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return "", eventErr(ReasonInvalidField, "request_id", "must be a string, got %s", describe(p.value()))
	}
	save := p.i
	s, ok := p.plainString()
	if !ok {
		p.i = save
		raw := p.value()
		if json.Unmarshal(raw, &s) != nil {
			return "", eventErr(ReasonMalformed, "request_id", "is not a valid JSON string")
		}
	}
	if err := checkRequestID(s); err != nil {
		return "", err
	}
	return s, nil
}

// checkRequestID applies the public API's rules to a decoded request id
// (every format's decoder calls it).
func checkRequestID(s string) *EventError {
	if len(s) == 0 || len(s) > MaxRequestIDLen {
		return eventErr(ReasonInvalidField, "request_id", "must be 1 to %d characters, got %d", MaxRequestIDLen, len(s))
	}
	// The public API's alphabet (webserver.ValidateRequestID): safe in logs,
	// Kafka headers and URLs without escaping.
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return eventErr(ReasonInvalidField, "request_id", "may only contain A-Z a-z 0-9 . _ : - (bad character at index %d)", i)
		}
	}
	return nil
}

// number reads a JSON number's text, or reports the field as wrong-typed.
func (p *scanner) number(field, want string) ([]byte, *EventError) {
	start := p.i
	if p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
	}
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-' {
			p.i++
			continue
		}
		break
	}
	text := p.b[start:p.i]
	if !validNumber(text) {
		p.i = start
		return nil, eventErr(ReasonInvalidField, field, "must be %s, got %s", want, describe(p.value()))
	}
	return text, nil
}

// validNumber checks the JSON number grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func validNumber(b []byte) bool {
	i := 0
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if digits() == 0 {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(b)
}

func (p *scanner) integer(field string) (int64, *EventError) {
	text, err := p.number(field, "an integer")
	if err != nil {
		return 0, err
	}
	n, perr := strconv.ParseInt(string(text), 10, 64)
	if perr != nil {
		return 0, eventErr(ReasonInvalidField, field, "must be an integer, got number %s", clip(string(text), 40))
	}
	return n, nil
}

func (p *scanner) rating() (int64, *EventError) {
	text, err := p.number("rating", "a number from 1 to 10")
	if err != nil {
		return 0, err
	}
	tenths, ok := parseTenths(text)
	if !ok {
		return 0, eventErr(ReasonRatingRange, "rating", "must be from 1 to 10 with at most one decimal, got %s", clip(string(text), 40))
	}
	if tenths < MinRatingTenths || tenths > MaxRatingTenths {
		return 0, eventErr(ReasonRatingRange, "rating", "must be from 1 to 10, got %s", clip(string(text), 40))
	}
	return tenths, nil
}

// parseTenths turns a valid JSON number into exact tenths. Plain decimals
// ("7", "7.5", "7.50") take a fast path; exponents go through big.Rat.
func parseTenths(text []byte) (int64, bool) {
	if len(text) > 40 {
		return 0, false
	}
	var whole, frac int64
	i := 0
	neg := text[0] == '-'
	if neg {
		i++
	}
	for ; i < len(text) && text[i] >= '0' && text[i] <= '9'; i++ {
		whole = whole*10 + int64(text[i]-'0')
		if whole > 1e12 {
			return 0, false
		}
	}
	if i < len(text) && text[i] == '.' {
		i++
		if i < len(text) && text[i] >= '0' && text[i] <= '9' {
			frac = int64(text[i] - '0')
			i++
		}
		for ; i < len(text) && text[i] >= '0' && text[i] <= '9'; i++ {
			if text[i] != '0' {
				return 0, false // a second decimal that is not zero
			}
		}
	}
	if i == len(text) {
		t := whole*10 + frac
		if neg {
			t = -t
		}
		return t, true
	}
	// Exponent form (e.g. 75e-1): exact rational arithmetic, bounded by the
	// 40-byte limit above.
	r, ok := new(big.Rat).SetString(string(text))
	if !ok {
		return 0, false
	}
	r.Mul(r, big.NewRat(10, 1))
	if !r.IsInt() || !r.Num().IsInt64() {
		return 0, false
	}
	return r.Num().Int64(), true
}

func (p *scanner) eventTime() (time.Time, *EventError) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return time.Time{}, eventErr(ReasonInvalidField, "event_time", "must be an RFC 3339 string, got %s", describe(p.value()))
	}
	s, ok := p.plainString()
	if !ok {
		return time.Time{}, eventErr(ReasonInvalidField, "event_time", "must be a plain RFC 3339 string")
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, eventErr(ReasonInvalidField, "event_time", "must be RFC 3339 (e.g. 2026-01-02T03:04:05.5Z), got %q", clip(s, 40))
	}
	return t, nil
}

// describe names the kind of a JSON value for error messages.
func describe(raw []byte) string {
	text := bytes.TrimSpace(raw)
	if len(text) == 0 {
		return "nothing"
	}
	switch c := text[0]; {
	case c == '-' || c >= '0' && c <= '9':
		return "number " + clip(string(text), 40)
	case c == '"':
		return "a string"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	}
	if !utf8.Valid(text) {
		return "bytes that are not UTF-8 text"
	}
	return "something that is not JSON"
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
