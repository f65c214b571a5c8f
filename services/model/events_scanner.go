package model

// The hand-written scanner behind DecodeRatingEvent: strict where
// encoding/json forgives (case-folded names, duplicate keys) and allocation
// free on the hot path.

import (
	"bytes"
	"encoding/json"
	"math/big"
	"strconv"
	"time"
)

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
