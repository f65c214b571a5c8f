package model

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
)

// memRegistry assigns ids like a registry without checking compatibility:
// the codec's own behaviour is under test here; the lab's registries are
// tested in lab/registry and end to end.
type memRegistry struct {
	mu      sync.Mutex
	schemas []string
	refuse  error
	down    bool
}

func (r *memRegistry) Register(_ context.Context, _ string, schema string) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refuse != nil {
		return 0, r.refuse
	}
	for i, s := range r.schemas {
		if s == schema {
			return i + 1, nil
		}
	}
	r.schemas = append(r.schemas, schema)
	return len(r.schemas), nil
}

func (r *memRegistry) SchemaByID(_ context.Context, id int) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		return "", errors.New("connection refused")
	}
	if id < 1 || id > len(r.schemas) {
		return "", fmt.Errorf("id %d: %w", id, ErrSchemaNotFound)
	}
	return r.schemas[id-1], nil
}

func avroCodecs(t *testing.T) (*Codec, *Codec, *memRegistry) {
	t.Helper()
	reg := &memRegistry{}
	prod, err := NewCodec(FormatAvro, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := NewCodec(FormatAvro, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return prod, cons, reg
}

var sampleRating = RatingEvent{RequestID: "r-1", MovieID: 42, Tenths: 75, UserID: 7,
	EventTime: time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)}

func TestAvroRoundTripsEveryTopic(t *testing.T) {
	ctx := context.Background()
	prod, cons, _ := avroCodecs(t)

	b, err := prod.EncodeRating(ctx, sampleRating)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != 0 || b[1] != 0 || b[2] != 0 || b[3] != 0 || b[4] != 1 {
		t.Fatalf("header % x: want magic 0 and schema id 1", b[:5])
	}
	got, err := cons.DecodeRating(ctx, b)
	if err != nil || got != sampleRating {
		t.Fatalf("rating: got %+v, %v; want %+v", got, err, sampleRating)
	}

	mv := Movie{ID: 3, Title: "Heat", ReleaseYear: 1995, Country: "US", Genres: []string{"Crime"},
		UpdatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Version: 4}
	b, err = prod.EncodeMovie(ctx, mv)
	if err != nil {
		t.Fatal(err)
	}
	gotMv, ok, err := cons.DecodeMovie(ctx, b)
	if err != nil || !ok || !reflect.DeepEqual(gotMv, mv) {
		t.Fatalf("movie: got %+v %v %v; want %+v", gotMv, ok, err, mv)
	}
	if _, ok, err := cons.DecodeMovie(ctx, nil); ok || err != nil {
		t.Fatalf("tombstone: ok=%v err=%v", ok, err)
	}

	rm := RatedMovieEvent{RatedMovie: NewRatedMovie(mv, CountAndSum{Count: 2, SumTenth: 155}),
		SourcePartition: 3, SourceOffset: 99} // zero LastEventTime survives too
	b, err = prod.EncodeRatedMovie(ctx, rm)
	if err != nil {
		t.Fatal(err)
	}
	gotRm, err := cons.DecodeRatedMovie(ctx, b)
	if err != nil || !reflect.DeepEqual(gotRm, rm) || !gotRm.LastEventTime.IsZero() {
		t.Fatalf("rated movie: got %+v, %v; want %+v", gotRm, err, rm)
	}
}

func TestAvroBadRecordsAreEventErrors(t *testing.T) {
	ctx := context.Background()
	prod, cons, _ := avroCodecs(t)
	good, err := prod.EncodeRating(ctx, sampleRating)
	if err != nil {
		t.Fatal(err)
	}
	bad := RatingEvent{RequestID: "r 2", MovieID: 42, Tenths: 75, EventTime: sampleRating.EventTime}
	badID, _ := prod.EncodeRating(ctx, bad)
	for _, tc := range []struct {
		name   string
		value  []byte
		reason string
	}{
		{"JSON in an Avro topic", []byte(`{"request_id":"r-1"}`), ReasonWrongMagicByte},
		{"empty value", nil, ReasonWrongMagicByte},
		{"header cut short", good[:3], ReasonTruncated},
		{"unknown schema id", append([]byte{0, 0, 0, 0, 99}, good[5:]...), ReasonUnknownSchema},
		{"body cut short", good[:len(good)-3], ReasonTruncated},
		{"trailing bytes", append(append([]byte{}, good...), 1, 2), ReasonMalformed},
		{"request id outside the alphabet", badID, ReasonInvalidField},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cons.DecodeRating(ctx, tc.value)
			var ee *EventError
			if !errors.As(err, &ee) || ee.Reason != tc.reason {
				t.Fatalf("got %v; want an EventError with reason %s", err, tc.reason)
			}
		})
	}
}

func TestAvroContractChangesUnderV1Readers(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		contract Contract
		reason   string // "" when v1 readers still read it
	}{
		{ContractAddOptional, ""},
		{ContractRenameField, ReasonIncompatibleSchema},
		{ContractChangeType, ReasonIncompatibleSchema},
	} {
		t.Run(string(tc.contract), func(t *testing.T) {
			prod, cons, _ := avroCodecs(t)
			if err := prod.SetContract(ctx, tc.contract); err != nil {
				t.Fatal(err)
			}
			b, err := prod.EncodeRating(ctx, sampleRating)
			if err != nil {
				t.Fatal(err)
			}
			got, err := cons.DecodeRating(ctx, b)
			if tc.reason == "" {
				if err != nil || got != sampleRating {
					t.Fatalf("got %+v, %v; want %+v", got, err, sampleRating)
				}
				return
			}
			var ee *EventError
			if !errors.As(err, &ee) || ee.Reason != tc.reason {
				t.Fatalf("got %v; want reason %s", err, tc.reason)
			}
		})
	}
}

func TestAvroRegistryOutageIsTransient(t *testing.T) {
	ctx := context.Background()
	prod, cons, reg := avroCodecs(t)
	b, _ := prod.EncodeRating(ctx, sampleRating)
	reg.down = true
	_, err := cons.DecodeRating(ctx, b)
	var ee *EventError
	if err == nil || errors.As(err, &ee) {
		t.Fatalf("got %v; want a transient (non-EventError) error", err)
	}
	reg.down = false
	if _, err := cons.DecodeRating(ctx, b); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
}

func TestAvroRefusedSchemaFailsEverySend(t *testing.T) {
	ctx := context.Background()
	prod, _, reg := avroCodecs(t)
	reg.refuse = errors.New("409 incompatible")
	if err := prod.SetContract(ctx, ContractRenameField); err == nil {
		t.Fatal("SetContract: want the registry's refusal")
	}
	if prod.Contract() != ContractRenameField {
		t.Fatal("the contract is deployed even when the registry refuses its schema")
	}
	if _, err := prod.EncodeRating(ctx, sampleRating); err == nil {
		t.Fatal("EncodeRating: want the refusal")
	}
}

func TestJSONContracts(t *testing.T) {
	for c, want := range map[Contract]string{
		ContractV1:          `{"request_id":"r-1","movie_id":42,"rating":7.5,"user_id":7,"event_time":"2026-01-02T03:04:05.123456Z"}`,
		ContractAddOptional: `{"request_id":"r-1","movie_id":42,"rating":7.5,"user_id":7,"event_time":"2026-01-02T03:04:05.123456Z","channel":"web"}`,
		ContractRenameField: `{"request_id":"r-1","movie_id":42,"score":7.5,"user_id":7,"event_time":"2026-01-02T03:04:05.123456Z"}`,
		ContractChangeType:  `{"request_id":"r-1","movie_id":42,"rating":"7.5","user_id":7,"event_time":"2026-01-02T03:04:05.123456Z"}`,
	} {
		if got := string(AppendRatingJSON(nil, c, sampleRating)); got != want {
			t.Errorf("%s:\n got %s\nwant %s", c, got, want)
		}
	}
}
