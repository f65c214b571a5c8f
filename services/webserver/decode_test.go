package webserver_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ratingslab/lab/services/webserver"
)

// FuzzDecodeRating: whatever the bytes, the decoder either names a field in
// a *FieldError or returns a rating inside the API's bounds.
func FuzzDecodeRating(f *testing.F) {
	for _, seed := range []string{
		`{"movie_id": 1, "rating": 7.5}`,
		`{"movie_id": 1, "rating": 10, "user_id": 3, "request_id": "r-1"}`,
		`{"movie_id": 1, "rating": 1e400}`,
		`{"movie_id": 1, "rating": 0.000000000000000000001e21}`,
		`{"movie_id": "1", "rating": "7"}`,
		`{"MOVIE_ID": 1}`,
		`[]`, `null`, ``, `{`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := webserver.DecodeRating(bytes.NewReader(body))
		if err != nil {
			var fe *webserver.FieldError
			if !errors.As(err, &fe) || fe.Field == "" || fe.Msg == "" {
				t.Fatalf("error %v (%T) does not name a field", err, err)
			}
			return
		}
		if r.MovieID <= 0 || r.Tenths < 10 || r.Tenths > 100 || r.UserID < 0 {
			t.Fatalf("accepted out-of-bounds rating %+v from %q", r, body)
		}
		if webserver.ValidateRequestID(r.RequestID) != nil {
			t.Fatalf("accepted invalid request id %q", r.RequestID)
		}
	})
}
