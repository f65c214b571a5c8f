package webserver

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/ratingslab/lab/services/lib/serve"
	"github.com/ratingslab/lab/services/model"
)

// FieldError is a rejected input, naming the field so a client can fix it.
type FieldError struct {
	Field string // JSON field or query parameter; "body" for the request as a whole
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// DecodeRating reads one POST /api/ratings body and returns the validated
// rating, with a generated request id when the client sent none. Every error
// is a *FieldError. It reads at most MaxBodyBytes+1 bytes from r; an
// *http.MaxBytesError from r is reported as a too-large body as well.
func DecodeRating(r io.Reader) (model.Rating, error) {
	body, err := io.ReadAll(io.LimitReader(r, MaxBodyBytes+1))
	if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge || len(body) > MaxBodyBytes {
		return model.Rating{}, fieldErr("body", "exceeds %d bytes", MaxBodyBytes)
	}
	if err != nil {
		return model.Rating{}, fieldErr("body", "could not be read: %v", err)
	}
	if r, ok := decodeSimpleRating(body); ok {
		return r, nil
	}
	req, ferr := parseRateRequest(body)
	if ferr != nil {
		return model.Rating{}, ferr
	}
	return req.validate()
}

// parseRateRequest decodes the object key by key: field names must match
// exactly (encoding/json alone would accept "MOVIE_ID"), unknown ones are
// named, and each value is checked against its own type.
func parseRateRequest(body []byte) (RateRequest, *FieldError) {
	var req RateRequest
	if len(bytes.TrimSpace(body)) == 0 {
		return req, fieldErr("body", "is empty; want a JSON object")
	}
	if !json.Valid(body) {
		var probe any
		err := json.Unmarshal(body, &probe)
		return req, fieldErr("body", "malformed JSON: %v", err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return req, fieldErr("body", "must be a JSON object")
	}
	// A map keeps the last of a repeated key; the event decoder refuses
	// repeats, and so does the API: {"movie_id":66,"movie_id":67} names no
	// single rating.
	if name, repeated := repeatedKey(body); repeated {
		return req, fieldErr(fieldLabel(name), "appears twice")
	}
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		raw := fields[name]
		var err error
		switch name {
		case "movie_id":
			err = decodeOptional(raw, &req.MovieID)
		case "user_id":
			err = decodeOptional(raw, &req.UserID)
		case "request_id":
			err = decodeOptional(raw, &req.RequestID)
		case "rating":
			req.Rating = raw
		default:
			return req, fieldErr(fieldLabel(name), "unknown field (allowed: movie_id, rating, user_id, request_id)")
		}
		if err != nil {
			return req, fieldErr(name, "must be %s, got %s", describeType(name), describeJSON(raw))
		}
	}
	return req, nil
}

// repeatedKey returns the first key that appears twice in the JSON object
// body (valid JSON, checked before).
func repeatedKey(body []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", false
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", false
		}
		key, _ := t.(string)
		if seen[key] {
			return key, true
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return "", false
		}
	}
	return "", false
}

// decodeOptional leaves *dst nil for JSON null, so null reads as "absent".
func decodeOptional[T any](raw json.RawMessage, dst **T) error {
	if string(bytes.TrimSpace(raw)) == "null" {
		return nil
	}
	v := new(T)
	if err := json.Unmarshal(raw, v); err != nil {
		return err
	}
	*dst = v
	return nil
}

func describeType(field string) string {
	switch field {
	case "movie_id", "user_id":
		return "an integer"
	case "request_id":
		return "a string"
	}
	return "a valid value"
}

// describeJSON names the kind of a JSON value for error messages, and shows
// short numbers (a client sending 5.5 as movie_id wants to see "5.5").
func describeJSON(raw json.RawMessage) string {
	text := bytes.TrimSpace(raw)
	if len(text) == 0 {
		return "nothing"
	}
	switch c := text[0]; {
	case c == '-' || c >= '0' && c <= '9':
		return "number " + truncate(string(text), 40)
	case c == '"':
		return "a string"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	}
	return "something else"
}

// fieldLabel shows a client's unknown field name as sent, quoted when it
// would otherwise be unreadable (empty, control characters, very long).
func fieldLabel(name string) string {
	if name != "" && len(name) <= 40 && strconv.Quote(name) == `"`+name+`"` {
		return name
	}
	return strconv.Quote(truncate(name, 40))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func (req RateRequest) validate() (model.Rating, error) {
	var out model.Rating
	if req.MovieID == nil {
		return out, fieldErr("movie_id", "is required")
	}
	if *req.MovieID <= 0 {
		return out, fieldErr("movie_id", "must be a positive integer, got %d", *req.MovieID)
	}
	out.MovieID = *req.MovieID

	tenths, err := ParseRatingTenths(req.Rating)
	if err != nil {
		return model.Rating{}, err
	}
	out.Tenths = tenths

	if req.UserID != nil {
		if *req.UserID < 0 {
			return model.Rating{}, fieldErr("user_id", "must not be negative, got %d", *req.UserID)
		}
		out.UserID = *req.UserID
	}

	if req.RequestID == nil {
		out.RequestID = NewRequestID()
	} else {
		if err := ValidateRequestID(*req.RequestID); err != nil {
			return model.Rating{}, err
		}
		out.RequestID = *req.RequestID
	}
	return out, nil
}

// ParseRatingTenths turns the JSON text of a rating into exact tenths:
// a finite number from 1 to 10 with at most one decimal ("7", "7.5", "75e-1").
func ParseRatingTenths(raw json.RawMessage) (int64, error) {
	text := strings.TrimSpace(string(raw))
	if text == "" || text == "null" {
		return 0, fieldErr("rating", "is required")
	}
	if c := text[0]; c != '-' && (c < '0' || c > '9') {
		return 0, fieldErr("rating", "must be a number from 1 to 10, got %s", describeJSON(raw))
	}
	// The float check comes first: it bounds the value cheaply, so the exact
	// check below never sees a huge exponent.
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fieldErr("rating", "must be a finite number from 1 to 10, got %.40s", text)
	}
	if f < 1 || f > 10 {
		return 0, fieldErr("rating", "must be from 1 to 10, got %.40s", text)
	}
	exact, ok := new(big.Rat).SetString(text)
	if !ok {
		return 0, fieldErr("rating", "must be a number from 1 to 10, got %.40s", text)
	}
	exact.Mul(exact, big.NewRat(10, 1))
	if !exact.IsInt() {
		return 0, fieldErr("rating", "must have at most one decimal, got %.40s", text)
	}
	tenths := exact.Num().Int64()
	if tenths < MinRatingTenths || tenths > MaxRatingTenths {
		return 0, fieldErr("rating", "must be from 1 to 10, got %.40s", text)
	}
	return tenths, nil
}

// ValidateRequestID accepts 1..128 characters of [A-Za-z0-9._:-], the
// alphabet that is safe in logs, Kafka headers and URLs without escaping.
func ValidateRequestID(id string) error {
	if len(id) == 0 || len(id) > MaxRequestIDLen {
		return fieldErr("request_id", "must be 1 to %d characters, got %d", MaxRequestIDLen, len(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == ':' || c == '-'
		if !ok {
			return fieldErr("request_id", "may only contain A-Z a-z 0-9 . _ : - (bad character at index %d)", i)
		}
	}
	return nil
}

// NewRequestID returns a random version-4 UUID in its usual text form.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// Page is one validated paging request.
type Page struct{ Offset, Limit int }

// ParsePage reads the raw query string of GET /api/movies and the page:
// ?offset=&limit= (offset default 0, limit default DefaultPageLimit, at most
// MaxPageLimit). A malformed query or a parameter given twice is an error
// naming it (serve.Query); with strict, so is any other parameter (the API:
// a typo such as ?limt= must not silently give the default page; the page
// tolerates what browsers and links add).
func ParsePage(rawQuery string, strict bool) (Page, error) {
	var allowed []string
	if strict {
		allowed = []string{"offset", "limit"}
	}
	q, perr := serve.Query(rawQuery, allowed)
	if perr != nil {
		return Page{}, &FieldError{Field: perr.Param, Msg: perr.Msg}
	}
	p := Page{Offset: 0, Limit: DefaultPageLimit}
	if q.Has("offset") {
		v := q.Get("offset")
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return Page{}, fieldErr("offset", "must be an integer >= 0, got %.40q", v)
		}
		p.Offset = n
	}
	if q.Has("limit") {
		v := q.Get("limit")
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPageLimit {
			return Page{}, fieldErr("limit", "must be an integer from 1 to %d, got %.40q", MaxPageLimit, v)
		}
		p.Limit = n
	}
	return p, nil
}

// ParseMovieID reads the {id} path value of /api/movies/{id}.
func ParseMovieID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fieldErr("id", "must be a positive integer, got %.40q", s)
	}
	return id, nil
}
