package model

// Wire formats of the log variant's events (docs/events.md). The processor
// must count an event produced by kcat exactly like one produced by the
// webserver, so the formats are spelled out here once, with a strict decoder
// that names the offending field: the reason ends up in a DLQ header.
//
// One file per topic: events_ratings.go, events_ratedmovies.go,
// events_movies.go; the strict JSON scanner is events_scanner.go. This file
// holds what they share: the error a DLQ'd event carries and its reasons.

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

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
