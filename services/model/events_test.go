package model

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

func TestRatingEventRoundTripsThroughItsCanonicalForm(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	for _, tenths := range []int64{10, 15, 75, 99, 100} {
		ev := RatingEvent{RequestID: "req-1", MovieID: 42, Tenths: tenths, UserID: 7, EventTime: at}
		b, err := ev.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeRatingEvent(b)
		if err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		if got != ev {
			t.Errorf("round trip of %s: got %+v, want %+v", b, got, ev)
		}
	}
}

// What someone typing into kcat would produce is counted like the
// webserver's own events.
func TestHandWrittenEventsInTheDocumentedFormatDecode(t *testing.T) {
	for text, want := range map[string]int64{
		`{"request_id":"kcat-1","movie_id":3,"rating":7,"event_time":"2026-01-02T03:04:05Z"}`:                          70,
		` { "movie_id" : 3 , "rating" : 7.5 , "request_id" : "kcat-2" , "event_time" : "2026-01-02T03:04:05+02:00" } `: 75,
		`{"request_id":"kcat-3","movie_id":3,"rating":8.0,"user_id":null,"event_time":"2026-01-02T03:04:05.5Z"}`:       80,
		`{"request_id":"kcat-4","movie_id":3,"rating":75e-1,"user_id":9,"event_time":"2026-01-02T03:04:05Z"}`:          75,
		`{"request_id":"kcat-5","movie_id":3,"rating":10,"event_time":"2026-01-02T03:04:05Z"}`:                         100,
		`{"request_id":"kcat-6","movie_id":3,"rating":1.50,"event_time":"2026-01-02T03:04:05Z"}`:                       15,
	} {
		ev, err := DecodeRatingEvent([]byte(text))
		if err != nil {
			t.Errorf("%s: %v", text, err)
			continue
		}
		if ev.Tenths != want || ev.MovieID != 3 {
			t.Errorf("%s: tenths %d movie %d, want %d and 3", text, ev.Tenths, ev.MovieID, want)
		}
	}
}

func TestDecodeRatingEventRejectsAndNamesTheField(t *testing.T) {
	const ok = `"request_id":"r","movie_id":3,"rating":7,"event_time":"2026-01-02T03:04:05Z"`
	cases := []struct {
		value  string
		reason string
		field  string
	}{
		{"", ReasonMalformed, "value"},
		{"\xff\xfe", ReasonMalformed, "value"},
		{"[1,2]", ReasonMalformed, "value"},
		{"{" + ok, ReasonMalformed, "value"},
		{"{" + ok + "} x", ReasonMalformed, "value"},
		{`{"request_id":"r","movie_id":"3","rating":7,"event_time":"2026-01-02T03:04:05Z"}`, ReasonInvalidField, "movie_id"},
		{`{"request_id":"r","movie_id":3.5,"rating":7,"event_time":"2026-01-02T03:04:05Z"}`, ReasonInvalidField, "movie_id"},
		{`{"request_id":"r","movie_id":0,"rating":7,"event_time":"2026-01-02T03:04:05Z"}`, ReasonInvalidField, "movie_id"},
		{`{"request_id":7,"movie_id":3,"rating":7,"event_time":"2026-01-02T03:04:05Z"}`, ReasonInvalidField, "request_id"},
		{`{"request_id":"","movie_id":3,"rating":7,"event_time":"2026-01-02T03:04:05Z"}`, ReasonInvalidField, "request_id"},
		{`{"request_id":"a b","movie_id":3,"rating":7,"event_time":"2026-01-02T03:04:05Z"}`, ReasonInvalidField, "request_id"},
		{`{"request_id":"r","movie_id":3,"rating":"7","event_time":"2026-01-02T03:04:05Z"}`, ReasonInvalidField, "rating"},
		{`{"request_id":"r","movie_id":3,"rating":0.5,"event_time":"2026-01-02T03:04:05Z"}`, ReasonRatingRange, "rating"},
		{`{"request_id":"r","movie_id":3,"rating":10.1,"event_time":"2026-01-02T03:04:05Z"}`, ReasonRatingRange, "rating"},
		{`{"request_id":"r","movie_id":3,"rating":7.25,"event_time":"2026-01-02T03:04:05Z"}`, ReasonRatingRange, "rating"},
		{`{"request_id":"r","movie_id":3,"rating":1e400,"event_time":"2026-01-02T03:04:05Z"}`, ReasonRatingRange, "rating"},
		{`{"request_id":"r","movie_id":3,"rating":07,"event_time":"2026-01-02T03:04:05Z"}`, ReasonInvalidField, "rating"},
		{`{"request_id":"r","movie_id":3,"rating":7,"event_time":"yesterday"}`, ReasonInvalidField, "event_time"},
		{`{"request_id":"r","movie_id":3,"rating":7,"event_time":1700000000}`, ReasonInvalidField, "event_time"},
		{`{"request_id":"r","movie_id":3,"rating":7}`, ReasonInvalidField, "event_time"},
		{`{"movie_id":3,"rating":7,"event_time":"2026-01-02T03:04:05Z"}`, ReasonInvalidField, "request_id"},
		{`{` + ok + `,"Movie_ID":4}`, ReasonInvalidField, "Movie_ID"},
		{`{` + ok + `,"movie_id":4}`, ReasonInvalidField, "movie_id"},
		{`{` + ok + `,"user_id":-1}`, ReasonInvalidField, "user_id"},
	}
	for _, c := range cases {
		_, err := DecodeRatingEvent([]byte(c.value))
		var ee *EventError
		if !errors.As(err, &ee) {
			t.Errorf("%q: want an *EventError, got %v", c.value, err)
			continue
		}
		if ee.Reason != c.reason || ee.Field != c.field {
			t.Errorf("%q: reason %s field %s (%v), want %s and %s", c.value, ee.Reason, ee.Field, err, c.reason, c.field)
		}
		if !strings.HasPrefix(err.Error(), c.field+": ") {
			t.Errorf("%q: error %q should start with the field name", c.value, err)
		}
	}
}

func TestCheckRatingKey(t *testing.T) {
	ev := RatingEvent{MovieID: 42}
	if err := CheckRatingKey([]byte("42"), ev); err != nil {
		t.Error(err)
	}
	for _, key := range []string{"", "042", "43", "42 "} {
		var ee *EventError
		if err := CheckRatingKey([]byte(key), ev); !errors.As(err, &ee) || ee.Reason != ReasonKeyMismatch {
			t.Errorf("key %q: want a key-mismatch error, got %v", key, err)
		}
	}
}

// The partition function is kafka-go's CRC32Balancer, which is kcat's and
// librdkafka's default for keyed records.
func TestRatingPartitionIsTheCRC32Balancer(t *testing.T) {
	b := kafka.CRC32Balancer{}
	parts := []int{0, 1, 2, 3, 4, 5}
	for id := int64(1); id < 2000; id++ {
		key := []byte(strconv.FormatInt(id, 10))
		if got, want := RatingPartition(key, 6), b.Balance(kafka.Message{Key: key}, parts...); got != want {
			t.Fatalf("movie %d: RatingPartition %d, CRC32Balancer %d", id, got, want)
		}
	}
}

func TestRatedMovieEventCarriesSourcePositionAndFreshness(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ev := RatedMovieEvent{RatedMovie: NewRatedMovie(Movie{ID: 5, Title: "T", ReleaseYear: 1999}, CountAndSum{Count: 3, SumTenth: 215}),
		LastEventTime: at, SourcePartition: 2, SourceOffset: 99}
	b := mustJSON(t, ev)
	for _, field := range []string{`"movie_id":5`, `"count":3`, `"sum":21.5`, `"sum_tenths":215`, `"last_event_time":"2026-01-02T03:04:05Z"`, `"source_partition":2`, `"source_offset":99`} {
		if !strings.Contains(string(b), field) {
			t.Errorf("%s lacks %s", b, field)
		}
	}
	got, err := DecodeRatedMovieEvent(b)
	if err != nil || got != ev {
		t.Errorf("round trip: %+v, %v", got, err)
	}
}

func FuzzDecodeRatingEvent(f *testing.F) {
	f.Add([]byte(`{"request_id":"r","movie_id":3,"rating":7.5,"user_id":1,"event_time":"2026-01-02T03:04:05Z"}`))
	f.Add([]byte(`{"request_id":"r","movie_id":3,"rating":75e-1,"event_time":"2026-01-02T03:04:05Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := DecodeRatingEvent(b)
		if err != nil {
			return
		}
		if ev.Tenths < MinRatingTenths || ev.Tenths > MaxRatingTenths || ev.MovieID <= 0 {
			t.Fatalf("accepted out-of-range event %+v from %q", ev, b)
		}
		again, _ := ev.MarshalJSON()
		ev2, err := DecodeRatingEvent(again)
		if err != nil || !ev2.EventTime.Equal(ev.EventTime) || ev2.Tenths != ev.Tenths || ev2.RequestID != ev.RequestID {
			t.Fatalf("re-encoded %s does not decode to the same event: %v", again, err)
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
