package webserver

import (
	"strconv"

	"github.com/ratingslab/lab/services/model"
)

// decodeSimpleRating is DecodeRating's fast path for the body almost every
// client sends: one flat object of the four known fields, each at most
// once, integers without fraction or exponent, a request id of plain
// ASCII without escapes, and a rating written as 1 to 10 with at most one
// decimal ("7", "7.5", "10.0"), every value within the API's bounds. For
// anything else — including every invalid body — ok is false and the
// full decoder (parseRateRequest, validate) decides, so the answers and
// their error messages are exactly the full decoder's
// (FuzzDecodeRatingFastPath, and a test over mutated bodies, compare the
// two). It exists because the full
// decoder's several passes were about a tenth of a webserver's CPU per
// rating in profiles.
func decodeSimpleRating(body []byte) (r model.Rating, ok bool) {
	p := simpleParser{b: body}
	p.space()
	if !p.byte('{') {
		return r, false
	}
	var seen [4]bool // movie_id, rating, user_id, request_id
	for first := true; ; first = false {
		p.space()
		if p.byte('}') {
			if first {
				return r, false // {}: the full decoder names what is missing
			}
			break
		}
		if !first && (!p.byte(',') || !p.spaceThen()) {
			return r, false
		}
		key, ok := p.plainString()
		if !ok {
			return r, false
		}
		p.space()
		if !p.byte(':') {
			return r, false
		}
		p.space()
		var field int
		switch key {
		case "movie_id":
			field = 0
			r.MovieID, ok = p.int()
			ok = ok && r.MovieID > 0
		case "rating":
			field = 1
			r.Tenths, ok = p.tenths()
		case "user_id":
			field = 2
			r.UserID, ok = p.int()
			ok = ok && r.UserID >= 0
		case "request_id":
			field = 3
			r.RequestID, ok = p.plainString()
			ok = ok && ValidateRequestID(r.RequestID) == nil
		default:
			return r, false
		}
		if !ok || seen[field] {
			return r, false
		}
		seen[field] = true
	}
	p.space()
	if p.i != len(p.b) || !seen[0] || !seen[1] {
		return r, false
	}
	if !seen[3] {
		r.RequestID = NewRequestID()
	}
	return r, true
}

// simpleParser reads the subset of JSON decodeSimpleRating accepts.
type simpleParser struct {
	b []byte
	i int
}

// space skips JSON whitespace.
func (p *simpleParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// spaceThen skips whitespace and reports true (for use in a condition).
func (p *simpleParser) spaceThen() bool { p.space(); return true }

func (p *simpleParser) byte(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// plainString reads a string of printable ASCII without escapes.
func (p *simpleParser) plainString() (string, bool) {
	if !p.byte('"') {
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
		case c == '\\' || c < 0x20 || c >= 0x7f:
			return "", false
		}
		p.i++
	}
	return "", false
}

// digits reads a run of ASCII digits.
func (p *simpleParser) digits() []byte {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	return p.b[start:p.i]
}

// int reads a JSON integer (optional minus, no leading zero, no fraction
// or exponent) that fits int64.
func (p *simpleParser) int() (int64, bool) {
	start := p.i
	p.byte('-')
	d := p.digits()
	if len(d) == 0 || len(d) > 1 && d[0] == '0' || p.numberGoesOn() {
		return 0, false
	}
	n, err := strconv.ParseInt(string(p.b[start:p.i]), 10, 64)
	return n, err == nil
}

// tenths reads a rating written 1 to 10 with at most one decimal.
func (p *simpleParser) tenths() (int64, bool) {
	d := p.digits()
	var units int64
	switch {
	case len(d) == 1 && d[0] >= '1':
		units = int64(d[0] - '0')
	case string(d) == "10":
		units = 10
	default:
		return 0, false
	}
	tenths := units * 10
	if p.byte('.') {
		f := p.digits()
		if len(f) != 1 {
			return 0, false
		}
		tenths += int64(f[0] - '0')
	}
	if p.numberGoesOn() || tenths < MinRatingTenths || tenths > MaxRatingTenths {
		return 0, false
	}
	return tenths, true
}

// numberGoesOn: the number continues in a way these readers do not take
// (fraction, exponent, more digits).
func (p *simpleParser) numberGoesOn() bool {
	if p.i >= len(p.b) {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '.' || c == 'e' || c == 'E' || c >= '0' && c <= '9':
		return true
	}
	return false
}
