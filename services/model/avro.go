package model

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/hamba/avro/v2"
)

// SchemaRegistry is what the Avro codec needs from a Confluent-compatible
// schema registry (services/lib/eventformat implements it over HTTP).
type SchemaRegistry interface {
	// Register returns the id of schema under subject, registering it when
	// the subject does not hold it yet (a Confluent serializer's
	// auto.register.schemas). A registry that refuses it (409 incompatible,
	// 422 invalid) answers an error.
	Register(ctx context.Context, subject, schema string) (id int, err error)
	// SchemaByID returns the text of schema id. An id the registry does not
	// know is an error wrapping ErrSchemaNotFound; anything else (network,
	// 5xx) is transient.
	SchemaByID(ctx context.Context, id int) (string, error)
}

// ErrSchemaNotFound is the registry's "no schema with this id" (40403).
var ErrSchemaNotFound = errors.New("schema id not found in the registry")

// ErrRegistryUnavailable wraps a decode that failed because the registry
// could not be asked: the record is not bad; retry it later.
var ErrRegistryUnavailable = errors.New("schema registry unavailable")

// Reasons an Avro record goes to the DLQ (besides the JSON ones that apply
// after decoding, such as rating-range).
const (
	ReasonWrongMagicByte     = "wrong-magic-byte"    // not the Confluent wire format
	ReasonUnknownSchema      = "unknown-schema-id"   // the registry has no schema with the record's id
	ReasonIncompatibleSchema = "incompatible-schema" // the writer's schema cannot be read with the consumer's
	ReasonTruncated          = "truncated-body"      // the body ends before its schema does
)

// The Go shapes of the v1 schemas (schemas/*.avsc).
type avroRating struct {
	RequestID string    `avro:"request_id"`
	MovieID   int64     `avro:"movie_id"`
	Rating    float64   `avro:"rating"`
	UserID    int64     `avro:"user_id"`
	EventTime time.Time `avro:"event_time"`
}

type avroMovie struct {
	ID          int64     `avro:"movie_id"`
	Title       string    `avro:"title"`
	ReleaseYear int       `avro:"release_year"`
	Country     string    `avro:"country"`
	Genres      []string  `avro:"genres"`
	UpdatedAt   time.Time `avro:"updated_at"`
	Version     int64     `avro:"version"`
}

type avroRatedMovie struct {
	MovieID         int64     `avro:"movie_id"`
	Title           string    `avro:"title"`
	ReleaseYear     int       `avro:"release_year"`
	Count           int64     `avro:"count"`
	Sum             float64   `avro:"sum"`
	Average         float64   `avro:"average"`
	SumTenths       int64     `avro:"sum_tenths"`
	LastEventTime   time.Time `avro:"last_event_time"`
	SourcePartition int       `avro:"source_partition"`
	SourceOffset    int64     `avro:"source_offset"`
}

// avroCodec writes and reads Confluent-framed Avro values. Writers register
// their schema once per (topic, contract) and cache the id; readers resolve
// each writer schema id against the topic's v1 schema once and cache the
// result (or the reason it cannot be read).
type avroCodec struct {
	reg     SchemaRegistry
	readers map[string]avro.Schema // topic → the consumer's (v1) schema

	mu       sync.Mutex
	writers  map[writerKey]*writerSchema
	resolved map[readerKey]resolvedSchema

	readerPool sync.Pool
}

type writerKey struct {
	topic    string
	contract Contract
}

type writerSchema struct {
	schema avro.Schema
	id     int
	err    error // the latest registration failure
	at     time.Time
}

type readerKey struct {
	topic string
	id    int
}

type resolvedSchema struct {
	schema avro.Schema
	err    *EventError // why records with this id cannot be read
}

// refusalRetry is how long a refused registration is remembered before the
// registry is asked again: a producer whose new schema is refused fails
// every send, and should not ask the registry once per send.
const refusalRetry = time.Second

func parseSchema(text string) (avro.Schema, error) {
	// A cache per schema: the v2 contracts reuse v1's record name.
	return avro.ParseWithCache(text, "", &avro.SchemaCache{})
}

func newAvroCodec(reg SchemaRegistry) (*avroCodec, error) {
	c := &avroCodec{reg: reg, readers: map[string]avro.Schema{},
		writers: map[writerKey]*writerSchema{}, resolved: map[readerKey]resolvedSchema{}}
	for _, topic := range ValueTopics {
		text, err := SchemaText(topic, ContractV1)
		if err != nil {
			return nil, err
		}
		s, err := parseSchema(text)
		if err != nil {
			return nil, fmt.Errorf("schema of %s: %w", topic, err)
		}
		c.readers[topic] = s
	}
	c.readerPool.New = func() any { return avro.NewReader(nil, 0) }
	return c, nil
}

// writer returns the registered schema and id for (topic, contract),
// registering it at first use.
func (c *avroCodec) writer(ctx context.Context, topic string, contract Contract) (*writerSchema, error) {
	key := writerKey{topic, contract}
	c.mu.Lock()
	w := c.writers[key]
	c.mu.Unlock()
	if w != nil && w.err == nil {
		return w, nil
	}
	if w != nil && time.Since(w.at) < refusalRetry {
		return nil, w.err
	}
	text, err := SchemaText(topic, contract)
	if err != nil {
		return nil, err
	}
	s, err := parseSchema(text)
	if err != nil {
		return nil, err
	}
	// Register the file's text, not s.String(): hamba's canonical form
	// drops defaults, and defaults decide compatibility.
	id, err := c.reg.Register(ctx, Subject(topic), text)
	w = &writerSchema{schema: s, id: id, at: time.Now()}
	if err != nil {
		w.err = fmt.Errorf("register the %s schema of %s under subject %s: %w", contract, topic, Subject(topic), err)
	}
	c.mu.Lock()
	c.writers[key] = w
	c.mu.Unlock()
	if w.err != nil {
		return nil, w.err
	}
	return w, nil
}

// encode writes v (a Go value matching the writer schema) in the wire format.
func (c *avroCodec) encode(ctx context.Context, topic string, contract Contract, v any) ([]byte, int, error) {
	w, err := c.writer(ctx, topic, contract)
	if err != nil {
		return nil, 0, err
	}
	body, err := avro.Marshal(w.schema, v)
	if err != nil {
		return nil, 0, fmt.Errorf("encode %s as Avro: %w", topic, err)
	}
	out := make([]byte, 0, wireHeaderSize+len(body))
	return append(appendWireHeader(out, w.id), body...), w.id, nil
}

// reader returns the schema that reads records written with schema id into
// the topic's v1 shape. A registry that cannot be reached is a transient
// error (not an *EventError): the caller retries rather than dead-letters.
func (c *avroCodec) reader(ctx context.Context, topic string, id int) (avro.Schema, error) {
	key := readerKey{topic, id}
	c.mu.Lock()
	r, ok := c.resolved[key]
	c.mu.Unlock()
	if ok {
		if r.err != nil {
			return nil, r.err
		}
		return r.schema, nil
	}
	text, err := c.reg.SchemaByID(ctx, id)
	switch {
	case errors.Is(err, ErrSchemaNotFound):
		r.err = eventErr(ReasonUnknownSchema, "value", "schema id %d is not known to the registry", id)
	case err != nil:
		return nil, fmt.Errorf("look up schema id %d: %w: %w", id, ErrRegistryUnavailable, err)
	default:
		r = c.resolve(topic, id, text)
	}
	c.mu.Lock()
	c.resolved[key] = r
	c.mu.Unlock()
	if r.err != nil {
		return nil, r.err
	}
	return r.schema, nil
}

func (c *avroCodec) resolve(topic string, id int, text string) resolvedSchema {
	writer, err := parseSchema(text)
	if err != nil {
		return resolvedSchema{err: eventErr(ReasonIncompatibleSchema, "value", "writer schema id %d does not parse: %v", id, err)}
	}
	reader := c.readers[topic]
	s, err := avro.NewSchemaCompatibility().Resolve(reader, writer)
	if err != nil {
		return resolvedSchema{err: eventErr(ReasonIncompatibleSchema, "value", "records written with schema id %d cannot be read as %s's schema: %v", id, topic, err)}
	}
	return resolvedSchema{schema: s}
}

// decode reads a wire-format value of topic into v (the v1 Go shape) and
// returns the writer's schema id.
func (c *avroCodec) decode(ctx context.Context, topic string, value []byte, v any) (int, error) {
	id, body, err := splitWire(value)
	if err != nil {
		return 0, err
	}
	schema, err := c.reader(ctx, topic, id)
	if err != nil {
		return id, err
	}
	r := c.readerPool.Get().(*avro.Reader)
	defer c.readerPool.Put(r)
	r.Reset(body)
	r.Error = nil
	r.ReadVal(schema, v)
	switch {
	case errors.Is(r.Error, io.EOF) || errors.Is(r.Error, io.ErrUnexpectedEOF):
		return id, eventErr(ReasonTruncated, "value", "the Avro body (%d bytes, schema id %d) ends before its schema does", len(body), id)
	case r.Error != nil:
		return id, eventErr(ReasonMalformed, "value", "Avro body (schema id %d): %v", id, r.Error)
	}
	// Every byte must belong to the record: trailing bytes mean the writer
	// and the id do not match.
	r.Peek()
	if r.Error == nil {
		return id, eventErr(ReasonMalformed, "value", "trailing bytes after the Avro record (schema id %d)", id)
	}
	r.Error = nil
	return id, nil
}

// ratingFromAvro checks a decoded rating like the JSON decoder does.
func ratingFromAvro(a avroRating) (RatingEvent, error) {
	ev := RatingEvent{RequestID: a.RequestID, MovieID: a.MovieID, UserID: a.UserID, EventTime: a.EventTime.UTC()}
	if err := checkRequestID(a.RequestID); err != nil {
		return ev, err
	}
	if a.MovieID <= 0 {
		return ev, eventErr(ReasonInvalidField, "movie_id", "must be a positive integer, got %d", a.MovieID)
	}
	if a.UserID < 0 {
		return ev, eventErr(ReasonInvalidField, "user_id", "must not be negative, got %d", a.UserID)
	}
	t := math.Round(a.Rating * 10)
	if math.IsNaN(a.Rating) || math.Abs(a.Rating*10-t) > 1e-6 {
		return ev, eventErr(ReasonRatingRange, "rating", "must be from 1 to 10 with at most one decimal, got %v", a.Rating)
	}
	if t < MinRatingTenths || t > MaxRatingTenths {
		return ev, eventErr(ReasonRatingRange, "rating", "must be from 1 to 10, got %v", a.Rating)
	}
	ev.Tenths = int64(t)
	return ev, nil
}

// ratingToAvro is the value a producer of contract c encodes.
func ratingToAvro(c Contract, e RatingEvent) any {
	rating := float64(e.Tenths) / 10
	if c == ContractV1 {
		return avroRating{RequestID: e.RequestID, MovieID: e.MovieID, Rating: rating, UserID: e.UserID, EventTime: e.EventTime}
	}
	m := map[string]any{"request_id": e.RequestID, "movie_id": e.MovieID, "user_id": e.UserID, "event_time": e.EventTime}
	switch c {
	case ContractAddOptional:
		m["rating"], m["channel"] = rating, "web"
	case ContractRenameField:
		m["score"] = rating
	case ContractChangeType:
		m["rating"] = string(AppendTenths(nil, e.Tenths))
	}
	return m
}
