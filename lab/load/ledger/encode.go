package ledger

import (
	"encoding/json"
	"strconv"
	"time"
)

// appendEntry renders an entry exactly as encoding/json would (same field
// order and names), without reflection: the load engine writes one line per
// rating sent, at rates where json.Marshal's cost shows.
func appendEntry(b []byte, e *Entry) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, e.Type)
	if e.RequestID != "" {
		b = append(b, `,"request_id":`...)
		b = appendString(b, e.RequestID)
	}
	b = append(b, `,"variant":`...)
	b = appendString(b, e.Variant)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	if e.Kind != "" {
		b = append(b, `,"kind":`...)
		b = appendString(b, e.Kind)
	}
	if e.MovieID != 0 {
		b = append(b, `,"movie_id":`...)
		b = strconv.AppendInt(b, e.MovieID, 10)
	}
	if e.UserID != 0 {
		b = append(b, `,"user_id":`...)
		b = strconv.AppendInt(b, e.UserID, 10)
	}
	if e.Rating != 0 {
		b = append(b, `,"rating":`...)
		b = appendFloat(b, e.Rating)
	}
	if e.RatingTenths != 0 {
		b = append(b, `,"rating_tenths":`...)
		b = strconv.AppendInt(b, e.RatingTenths, 10)
	}
	if e.UnknownMovie {
		b = append(b, `,"unknown_movie":true`...)
	}
	if e.NewMovie {
		b = append(b, `,"new_movie":true`...)
	}
	b = append(b, `,"expected":`...)
	b = appendString(b, string(e.Expected))
	b = append(b, `,"sent_at":"`...)
	b = e.SentAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","outcome":`...)
	b = appendString(b, string(e.Outcome))
	if e.Status != 0 {
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(e.Status), 10)
	}
	if e.Cause != "" {
		b = append(b, `,"cause":`...)
		b = appendString(b, e.Cause)
	}
	b = append(b, `,"latency_ns":`...)
	b = strconv.AppendInt(b, int64(e.LatencyNs), 10)
	if e.Error != "" {
		b = append(b, `,"error":`...)
		b = appendString(b, e.Error)
	}
	if len(e.Attempts) > 0 {
		// Rare (retried ratings only): encoding/json's own rendering.
		q, _ := json.Marshal(e.Attempts)
		b = append(b, `,"attempts":`...)
		b = append(b, q...)
	}
	return append(b, '}')
}

// appendString quotes s for JSON. Plain printable ASCII (ids, names) is
// copied; anything else goes through encoding/json for exact escaping.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendFloat(b []byte, f float64) []byte {
	q, err := json.Marshal(f)
	if err != nil {
		return append(b, '0')
	}
	return append(b, q...)
}
