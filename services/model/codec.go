package model

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
)

// Codec writes and reads the log's event values in the lab's format (the
// --format switch): every producer and every decoder of `ratings`, `movies`
// and `rated-movies` goes through one. A nil *Codec is the JSON format, so
// code and tests that never heard of Avro keep working.
//
// Decode errors are either an *EventError (the record itself is bad: the
// processor dead-letters it with Reason) or transient (the registry could
// not be asked: retry, never dead-letter).
type Codec struct {
	format   Format
	avro     *avroCodec
	contract atomic.Pointer[Contract] // what this producer writes to `ratings`
	obs      CodecObserver
}

// CodecObserver counts what a codec does (services/lib/eventformat's metrics).
// schemaID is 0 for JSON values.
type CodecObserver interface {
	Encoded(topic string, schemaID int)
	Decoded(topic string, schemaID int)
	DecodeFailed(topic, reason string)
}

// NewCodec returns a codec for format f. Avro needs reg; obs may be nil.
func NewCodec(f Format, reg SchemaRegistry, obs CodecObserver) (*Codec, error) {
	c := &Codec{format: f, obs: obs}
	switch f {
	case FormatJSON:
	case FormatAvro:
		if reg == nil {
			return nil, errors.New("--format avro needs a schema registry (--registry URL)")
		}
		a, err := newAvroCodec(reg)
		if err != nil {
			return nil, err
		}
		c.avro = a
	default:
		return nil, fmt.Errorf("unknown format %q", f)
	}
	return c, nil
}

// Format is the codec's format (JSON for a nil codec).
func (c *Codec) Format() Format {
	if c == nil {
		return FormatJSON
	}
	return c.format
}

// Contract is the rating contract this producer writes.
func (c *Codec) Contract() Contract {
	if c == nil {
		return ContractV1
	}
	if p := c.contract.Load(); p != nil {
		return *p
	}
	return ContractV1
}

// SetContract deploys another rating contract on this producer (the
// schema-change experiment). The deploy happens whatever the registry says,
// as a real deploy would; in Avro the new schema is registered at once and
// the registry's answer is returned, so a refusal is seen when it happens
// (and every later send fails with it).
func (c *Codec) SetContract(ctx context.Context, contract Contract) error {
	if c == nil {
		return errors.New("no codec configured")
	}
	c.contract.Store(&contract)
	if c.avro == nil {
		return nil
	}
	_, err := c.avro.writer(ctx, TopicRatings, contract)
	return err
}

// Prepare registers the schemas this producer writes (Avro), so that a
// registry problem shows at start rather than at the first record.
func (c *Codec) Prepare(ctx context.Context, topics ...string) error {
	if c == nil || c.avro == nil {
		return nil
	}
	for _, t := range topics {
		contract := ContractV1
		if t == TopicRatings {
			contract = c.Contract()
		}
		if _, err := c.avro.writer(ctx, t, contract); err != nil {
			return err
		}
	}
	return nil
}

func (c *Codec) encoded(topic string, id int) {
	if c != nil && c.obs != nil {
		c.obs.Encoded(topic, id)
	}
}

// decoded counts a decode's outcome and passes err on.
func (c *Codec) decoded(topic string, id int, err error) error {
	if c == nil || c.obs == nil {
		return err
	}
	var ee *EventError
	switch {
	case err == nil:
		c.obs.Decoded(topic, id)
	case errors.As(err, &ee):
		c.obs.DecodeFailed(topic, ee.Reason)
	default:
		c.obs.DecodeFailed(topic, "registry-unavailable") // eventformat's registryUnavailable
	}
	return err
}

// EncodeRating writes a `ratings` value in the producer's contract.
func (c *Codec) EncodeRating(ctx context.Context, e RatingEvent) ([]byte, error) {
	contract := c.Contract()
	if c == nil || c.avro == nil {
		c.encoded(TopicRatings, 0)
		return AppendRatingJSON(make([]byte, 0, 160), contract, e), nil
	}
	b, id, err := c.avro.encode(ctx, TopicRatings, contract, ratingToAvro(contract, e))
	if err == nil {
		c.encoded(TopicRatings, id)
	}
	return b, err
}

// DecodeRating reads a `ratings` value strictly (see DecodeRatingEvent).
func (c *Codec) DecodeRating(ctx context.Context, value []byte) (RatingEvent, error) {
	if c == nil || c.avro == nil {
		ev, err := DecodeRatingEvent(value)
		return ev, c.decoded(TopicRatings, 0, err)
	}
	var a avroRating
	id, err := c.avro.decode(ctx, TopicRatings, value, &a)
	if err != nil {
		return RatingEvent{}, c.decoded(TopicRatings, id, err)
	}
	ev, err := ratingFromAvro(a)
	return ev, c.decoded(TopicRatings, id, err)
}

// EncodeMovie writes a `movies` value (a tombstone is an empty value in
// every format, and is not encoded here).
func (c *Codec) EncodeMovie(ctx context.Context, m Movie) ([]byte, error) {
	if c == nil || c.avro == nil {
		c.encoded(TopicMovies, 0)
		return json.Marshal(m)
	}
	a := avroMovie(m)
	if a.Genres == nil {
		a.Genres = []string{}
	}
	b, id, err := c.avro.encode(ctx, TopicMovies, ContractV1, a)
	if err == nil {
		c.encoded(TopicMovies, id)
	}
	return b, err
}

// DecodeMovie reads a `movies` value; an empty value is a tombstone
// (ok=false, no error).
func (c *Codec) DecodeMovie(ctx context.Context, value []byte) (Movie, bool, error) {
	if len(value) == 0 {
		return Movie{}, false, nil
	}
	if c == nil || c.avro == nil {
		m, ok, err := DecodeMovie(value)
		return m, ok, c.decoded(TopicMovies, 0, err)
	}
	var a avroMovie
	id, err := c.avro.decode(ctx, TopicMovies, value, &a)
	if err != nil {
		return Movie{}, false, c.decoded(TopicMovies, id, err)
	}
	m := Movie{ID: a.ID, Title: a.Title, ReleaseYear: a.ReleaseYear, Country: a.Country, UpdatedAt: a.UpdatedAt.UTC(), Version: a.Version}
	if len(a.Genres) > 0 {
		m.Genres = a.Genres
	}
	if m.ID <= 0 {
		return m, false, c.decoded(TopicMovies, id, eventErr(ReasonInvalidField, "movie_id", "must be positive, got %d", m.ID))
	}
	return m, true, c.decoded(TopicMovies, id, nil)
}

// EncodeRatedMovie writes a `rated-movies` value.
func (c *Codec) EncodeRatedMovie(ctx context.Context, e RatedMovieEvent) ([]byte, error) {
	if c == nil || c.avro == nil {
		c.encoded(TopicRatedMovies, 0)
		return json.Marshal(e)
	}
	a := avroRatedMovie{MovieID: e.MovieID, Title: e.Title, ReleaseYear: e.ReleaseYear, Count: e.Count, Sum: e.Sum,
		Average: e.Average, SumTenths: e.SumTenths, LastEventTime: e.LastEventTime, SourcePartition: e.SourcePartition,
		SourceOffset: e.SourceOffset}
	b, id, err := c.avro.encode(ctx, TopicRatedMovies, ContractV1, a)
	if err == nil {
		c.encoded(TopicRatedMovies, id)
	}
	return b, err
}

// DecodeRatedMovie reads a `rated-movies` value.
func (c *Codec) DecodeRatedMovie(ctx context.Context, value []byte) (RatedMovieEvent, error) {
	if c == nil || c.avro == nil {
		ev, err := DecodeRatedMovieEvent(value)
		return ev, c.decoded(TopicRatedMovies, 0, err)
	}
	var a avroRatedMovie
	id, err := c.avro.decode(ctx, TopicRatedMovies, value, &a)
	if err != nil {
		return RatedMovieEvent{}, c.decoded(TopicRatedMovies, id, err)
	}
	ev := RatedMovieEvent{
		RatedMovie: RatedMovie{MovieID: a.MovieID, Title: a.Title, ReleaseYear: a.ReleaseYear, Count: a.Count,
			Sum: a.Sum, Average: a.Average, SumTenths: a.SumTenths},
		LastEventTime: a.LastEventTime.UTC(), SourcePartition: a.SourcePartition, SourceOffset: a.SourceOffset,
	}
	if ev.MovieID <= 0 || ev.Count < 0 || ev.SumTenths < 0 || ev.SourceOffset < 0 {
		err = eventErr(ReasonInvalidField, "value", "rated-movies value: movie_id %d, count %d, sum_tenths %d, source_offset %d out of range",
			ev.MovieID, ev.Count, ev.SumTenths, ev.SourceOffset)
	}
	return ev, c.decoded(TopicRatedMovies, id, err)
}
