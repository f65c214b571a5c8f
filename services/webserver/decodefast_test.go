package webserver

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/ratingslab/lab/services/lib/servetest"
)

// The fast path takes the bodies clients send, and leaves everything
// unusual to the full decoder.
func TestTheFastPathTakesTheUsualBodiesOnly(t *testing.T) {
	for _, body := range []string{
		`{"request_id":"load-1-2","movie_id":42,"user_id":7,"rating":7.5}`, // lab load's
		`{"movie_id": 1, "rating": 10}`,
		` { "movie_id" : 3 , "rating" : 1.0 , "request_id" : "a:b.c-d_e" } `,
	} {
		if _, ok := decodeSimpleRating([]byte(body)); !ok {
			t.Errorf("%s: not taken by the fast path", body)
		}
	}
	for _, body := range []string{
		`{"movie_id": 1, "rating": 75e-1}`, `{"movie_id": 1, "rating": 7.50}`, `{"movie_id": 1, "rating": "7"}`,
		`{"movie_id": 1, "rating": 10.5}`, `{"movie_id": 1, "rating": 0.5}`, `{"movie_id": 0, "rating": 5}`,
		`{"movie_id": 1, "movie_id": 1, "rating": 5}`, `{"MOVIE_ID": 1, "rating": 5}`, `{"movie_id": 1, "rating": 5, "x": 1}`,
		`{"movie_id": 1, "rating": 5, "user_id": null}`, `{"movie_id": 1, "rating": 5, "request_id": "a\u0062"}`,
		`{"movie_id": 1, "rating": 5, "request_id": "a b"}`, `{"movie_id": 1, "rating": 5}{}`, `{"movie_id": 1}`,
		`{"movie_id": 99999999999999999999, "rating": 5}`, `{"movie_id": 01, "rating": 5}`, `{}`, ``, `[]`,
	} {
		if r, ok := decodeSimpleRating([]byte(body)); ok {
			t.Errorf("%s: taken by the fast path (%+v), want the full decoder", body, r)
		}
	}
}

var fastPathSeeds = []string{
	`{"request_id":"load-1-2","movie_id":42,"user_id":7,"rating":7.5}`,
	`{"movie_id": 1, "rating": 10}`, `{"movie_id": -0, "rating": 1, "user_id": -0}`,
	`{"movie_id": 1, "rating": 10.0, "request_id": ""}`, `{"movie_id": 9223372036854775807, "rating": 5}`,
	`{"movie_id":1,"rating":5,}`, "{\"movie_id\":1,\"rating\":5}\n", `{"movie_id": 1, "rating": 5 ,"user_id":0}`,
}

// Whatever the bytes, a body the fast path takes decodes to exactly the
// rating the full decoder returns (and so every other body gets the full
// decoder's answer and error message).
func FuzzDecodeRatingFastPath(f *testing.F) {
	for _, seed := range fastPathSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(checkFastPathAgreesWithFullDecoder)
}

// The same check without the fuzzing engine (which instruments SQLite and
// takes minutes to build): 100,000 bodies mutated from the seeds with JSON's
// own characters, the same every run.
func TestTheFastPathAgreesWithTheFullDecoderOnMutatedBodies(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 3))
	const alphabet = `{}[]:,"\ 0123456789.-+eE_abcdilmnorstuvgMR` + "\t\n\x00\x7f\xc3"
	taken := 0
	for range 100_000 {
		body := []byte(fastPathSeeds[rng.IntN(len(fastPathSeeds))])
		for range 1 + rng.IntN(3) {
			i := rng.IntN(len(body) + 1)
			c := alphabet[rng.IntN(len(alphabet))]
			switch rng.IntN(3) {
			case 0: // replace
				if i < len(body) {
					body[i] = c
				}
			case 1: // insert
				body = append(body[:i], append([]byte{c}, body[i:]...)...)
			case 2: // delete
				if i < len(body) {
					body = append(body[:i], body[i+1:]...)
				}
			}
		}
		if _, ok := decodeSimpleRating(body); ok {
			taken++
		}
		checkFastPathAgreesWithFullDecoder(t, body)
	}
	t.Logf("%d of 100000 mutated bodies taken by the fast path", taken)
}

func checkFastPathAgreesWithFullDecoder(t *testing.T, body []byte) {
	t.Helper()
	fast, ok := decodeSimpleRating(body)
	if !ok {
		return
	}
	req, ferr := parseRateRequest(body)
	if ferr != nil {
		t.Fatalf("%q: the fast path took it, the full decoder says %v", body, ferr)
	}
	full, err := req.validate()
	if err != nil {
		t.Fatalf("%q: the fast path took it, the full decoder says %v", body, err)
	}
	if req.RequestID == nil { // both generated one
		if ValidateRequestID(fast.RequestID) != nil {
			t.Fatalf("%q: generated request id %q", body, fast.RequestID)
		}
		full.RequestID = fast.RequestID
	}
	if fast != full {
		t.Fatalf("%q: fast path %+v, full decoder %+v", body, fast, full)
	}
}

// BenchmarkDecodeRating is what decoding a POST body costs a webserver
// (go test ./services/webserver -run '^$' -bench DecodeRating -benchmem).
func BenchmarkDecodeRating(b *testing.B) {
	body := []byte(`{"request_id":"load-1-123456","movie_id":42,"user_id":7,"rating":7.5}`)
	servetest.ReportCPU(b)
	for b.Loop() {
		if _, err := DecodeRating(bytes.NewReader(body)); err != nil {
			b.Fatal(err)
		}
	}
}
