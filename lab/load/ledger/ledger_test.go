package ledger

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLedgerRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.jsonl")
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	w, err := Create(path, Header{RunID: "run", Scenario: "steady", Seed: 42, Variants: []string{"rpc", "stream"},
		Targets: map[string]string{"rpc": "http://127.0.0.1:7710"}, Source: "scenario", StartedAt: start})
	if err != nil {
		t.Fatal(err)
	}
	entries := []Entry{
		{RequestID: "run-rpc-0", Variant: "rpc", Seq: 0, MovieID: 3, UserID: 9, Rating: 7.5, RatingTenths: 75, SentAt: start, Outcome: Acknowledged, Status: 201, LatencyNs: 1500 * time.Microsecond},
		{RequestID: "run-stream-0", Variant: "stream", Seq: 0, MovieID: 3, UserID: 9, Rating: 7.5, RatingTenths: 75, SentAt: start, Outcome: Ambiguous, Cause: "timeout", LatencyNs: time.Second, Error: "timeout"},
		// A retried rating keeps every attempt.
		{RequestID: "run-stream-1", Variant: "stream", Seq: 1, MovieID: 4, UserID: 9, Rating: 7, RatingTenths: 70, SentAt: start, Outcome: Acknowledged, Status: 202, LatencyNs: 2 * time.Second,
			Attempts: []Attempt{{SentAt: start, Status: 504, Outcome: Ambiguous, Cause: CauseOutcomeUnknown, LatencyNs: time.Second}, {SentAt: start.Add(1500 * time.Millisecond), Status: 202, Outcome: Acknowledged, LatencyNs: time.Millisecond}}},
	}
	for _, e := range entries {
		if err := w.Record(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(start.Add(time.Minute), false); err != nil {
		t.Fatal(err)
	}
	l, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if l.Header.RunID != "run" || l.Header.Version != Version || len(l.Header.Variants) != 2 || !l.Header.StartedAt.Equal(start) {
		t.Errorf("header: %+v", l.Header)
	}
	if !l.Complete() || l.End.Posts["rpc"][Acknowledged] != 1 || l.End.Posts["stream"][Ambiguous] != 1 {
		t.Errorf("end line: %+v", l.End)
	}
	if len(l.Entries) != 3 {
		t.Fatalf("want 3 entries, got %d", len(l.Entries))
	}
	for i := range entries {
		got, want := l.Entries[i], entries[i]
		want.Type, want.Expected = TypePost, Acknowledged
		if !got.SentAt.Equal(want.SentAt) {
			t.Errorf("entry %d sent_at %v, want %v", i, got.SentAt, want.SentAt)
		}
		got.SentAt, want.SentAt = time.Time{}, time.Time{}
		for j := range got.Attempts {
			if !got.Attempts[j].SentAt.Equal(want.Attempts[j].SentAt) {
				t.Errorf("entry %d attempt %d sent_at %v, want %v", i, j, got.Attempts[j].SentAt, want.Attempts[j].SentAt)
			}
			got.Attempts[j].SentAt, want.Attempts[j].SentAt = time.Time{}, time.Time{}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("entry %d: got %+v, want %+v", i, got, want)
		}
	}
	if _, err := Create(path, Header{RunID: "run"}); err == nil {
		t.Error("Create must not overwrite an existing ledger")
	}
}

func TestLedgerReaderToleratesACrashButNotCorruption(t *testing.T) {
	dir := t.TempDir()
	header := `{"type":"header","version":2,"run_id":"r","scenario":"s","seed":1,"variants":["rpc"],"targets":{},"source":"scenario","started_at":"2026-01-02T03:04:05Z","expected_per_variant":2}` + "\n"
	post := `{"type":"post","request_id":"r-rpc-0","variant":"rpc","seq":0,"movie_id":1,"user_id":1,"rating":5,"rating_tenths":50,"expected":"acknowledged","sent_at":"2026-01-02T03:04:05Z","outcome":"acknowledged","status":201,"latency_ns":1000}` + "\n"

	crashed := filepath.Join(dir, "crashed.jsonl")
	os.WriteFile(crashed, []byte(header+post+`{"type":"post","request_id":"r-rp`), 0o644)
	l, err := Read(crashed)
	if err != nil {
		t.Fatal(err)
	}
	if l.Complete() || l.TruncatedLine != 3 || len(l.Entries) != 1 {
		t.Errorf("a crashed writer's ledger: want incomplete with truncated line 3 and 1 entry, got complete=%v line=%d entries=%d", l.Complete(), l.TruncatedLine, len(l.Entries))
	}

	corrupt := filepath.Join(dir, "corrupt.jsonl")
	os.WriteFile(corrupt, []byte(header+post+"{not json}\n"+post), 0o644)
	if _, err := Read(corrupt); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("a malformed line must be an error naming line 3, got %v", err)
	}
	badOutcome := filepath.Join(dir, "outcome.jsonl")
	os.WriteFile(badOutcome, []byte(header+strings.Replace(post, "acknowledged", "maybe", 1)), 0o644)
	if _, err := Read(badOutcome); err == nil || !strings.Contains(err.Error(), "outcome") {
		t.Errorf("an unknown outcome must be an error, got %v", err)
	}
	noHeader := filepath.Join(dir, "noheader.jsonl")
	os.WriteFile(noHeader, []byte(post), 0o644)
	if _, err := Read(noHeader); err == nil || !strings.Contains(err.Error(), "header") {
		t.Errorf("a file without header must be an error, got %v", err)
	}
}

func TestFastEncodingMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.FixedZone("x", 3600))
	for _, e := range []Entry{
		{Type: TypePost, RequestID: "r-rpc-1", Variant: "rpc", Seq: 1, MovieID: 2, UserID: 3, Rating: 7.5, RatingTenths: 75, Expected: Acknowledged, SentAt: at, Outcome: Acknowledged, Status: 201, LatencyNs: 12345},
		{Type: TypePost, RequestID: "r-stream-2", Variant: "stream", Seq: 2, MovieID: 900001, Rating: 10, RatingTenths: 100, UnknownMovie: true, Expected: Rejected, SentAt: at, Outcome: Ambiguous, Cause: "timeout", LatencyNs: 1, Error: "Post \"http://x/<a>&\": \x01 naïve \\ \t"},
		{Type: TypePost, SentAt: time.Time{}, Outcome: Failed, Rating: 1, Expected: Acknowledged},
		{Type: TypePost, RequestID: "r-stream-3", Variant: "stream", Seq: 3, MovieID: 181, Rating: 6, RatingTenths: 60, NewMovie: true, Expected: Rejected, SentAt: at, Outcome: Rejected, Status: 422, Cause: "4xx", LatencyNs: 2},
		{Type: TypeGet, Variant: "rpc", Seq: 3, Kind: KindMovie, MovieID: 7, Expected: Acknowledged, SentAt: at, Outcome: Failed, Status: 503, Cause: "5xx", LatencyNs: 7},
		{Type: TypeGet, Variant: "rpc", Seq: 4, Kind: KindList, Expected: Acknowledged, SentAt: at, Outcome: Acknowledged, Status: 200, LatencyNs: 8},
	} {
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendEntry(nil, &e); string(got) != string(want) {
			t.Errorf("fast encoding differs:\n got %s\nwant %s", got, want)
		}
	}
}

// A ledger of another version is refused with its version named, and for
// version 1 why: nothing is silently read with today's meanings.
func TestOtherVersionsAreRefusedByName(t *testing.T) {
	dir := t.TempDir()
	for v, want := range map[int]string{1: "ledger version 1 is not supported: this lab reads version 2", 3: "written by a newer lab", 0: "ledger version 0"} {
		path := filepath.Join(dir, fmt.Sprintf("v%d.jsonl", v))
		os.WriteFile(path, []byte(fmt.Sprintf(`{"type":"header","version":%d,"run_id":"r","scenario":"s","seed":1,"variants":["rpc"],"targets":{},"source":"scenario","started_at":"2026-01-02T03:04:05Z","expected_per_variant":2}`+"\n", v)), 0o644)
		_, err := Read(path)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
			t.Errorf("version %d: %v, want an error naming the file and %q", v, err, want)
		}
	}
}

// Reads go to their own list; a get line must say what it read.
func TestReadsAreKeptApartFromRatings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.jsonl")
	w, err := Create(path, Header{RunID: "run", Variants: []string{"rpc"}})
	if err != nil {
		t.Fatal(err)
	}
	w.Record(Entry{Variant: "rpc", Seq: 0, Kind: KindRating, MovieID: 1, Rating: 5, RatingTenths: 50, Outcome: Acknowledged})
	w.Record(Entry{Variant: "rpc", Seq: 1, Kind: KindMovie, MovieID: 900001, UnknownMovie: true, Expected: Rejected, Outcome: Rejected, Status: 404})
	w.Record(Entry{Variant: "rpc", Seq: 2, Kind: KindList, Outcome: Acknowledged, Status: 200})
	if err := w.Close(time.Now(), false); err != nil {
		t.Fatal(err)
	}
	l, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Entries) != 1 || len(l.Reads) != 2 || l.Reads[0].KindOf() != KindMovie || !l.Reads[0].AsExpected() || l.Entries[0].KindOf() != KindRating {
		t.Errorf("entries %+v reads %+v", l.Entries, l.Reads)
	}
	if l.End.Gets["rpc"][Acknowledged] != 1 || l.End.Gets["rpc"][Rejected] != 1 || l.End.Posts["rpc"][Acknowledged] != 1 {
		t.Errorf("end counts: %+v", l.End)
	}
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	data, _ := os.ReadFile(path)
	os.WriteFile(bad, []byte(strings.Replace(string(data), `"kind":"list"`, `"kind":"delete"`, 1)), 0o644)
	if _, err := Read(bad); err == nil || !strings.Contains(err.Error(), "line 4: kind") {
		t.Errorf("a get line of an unknown kind: %v", err)
	}
}

func TestClassifyIsTheOneDefinitionOfOutcomes(t *testing.T) {
	for _, c := range []struct {
		a     Answer
		want  Outcome
		cause string
	}{
		{Answer{Status: 201, Written: true}, Acknowledged, ""},
		{Answer{Status: 422, Written: true}, Rejected, CauseHTTP4xx},
		{Answer{Status: 503, Written: true}, Failed, CauseHTTP5xx},
		{Answer{Status: 500, Written: true}, Failed, CauseHTTP5xx},
		{Answer{Status: 504, Written: true}, Ambiguous, CauseOutcomeUnknown},
		{Answer{Status: 302, Written: true}, Rejected, CauseHTTPOther},
		{Answer{}, Failed, CauseNotSent},
		{Answer{Written: true, TimedOut: true}, Ambiguous, CauseTimeout},
		{Answer{Written: true, Aborted: true}, Ambiguous, CauseAborted},
		{Answer{Written: true}, Ambiguous, CauseConnError},
	} {
		if o, cause := Classify(c.a); o != c.want || cause != c.cause {
			t.Errorf("%+v: %s/%s, want %s/%s", c.a, o, cause, c.want, c.cause)
		}
	}
}
