package ledger

import (
	"encoding/json"
	"os"
	"path/filepath"
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
	if len(l.Entries) != 2 {
		t.Fatalf("want 2 entries, got %d", len(l.Entries))
	}
	for i := range entries {
		got, want := l.Entries[i], entries[i]
		want.Type = TypePost
		if !got.SentAt.Equal(want.SentAt) {
			t.Errorf("entry %d sent_at %v, want %v", i, got.SentAt, want.SentAt)
		}
		got.SentAt, want.SentAt = time.Time{}, time.Time{}
		if got != want {
			t.Errorf("entry %d: got %+v, want %+v", i, got, want)
		}
	}
	if _, err := Create(path, Header{RunID: "run"}); err == nil {
		t.Error("Create must not overwrite an existing ledger")
	}
}

func TestLedgerReaderToleratesACrashButNotCorruption(t *testing.T) {
	dir := t.TempDir()
	header := `{"type":"header","version":1,"run_id":"r","scenario":"s","seed":1,"variants":["rpc"],"targets":{},"source":"scenario","started_at":"2026-01-02T03:04:05Z","expected_per_variant":2}` + "\n"
	post := `{"type":"post","request_id":"r-rpc-0","variant":"rpc","seq":0,"movie_id":1,"user_id":1,"rating":5,"rating_tenths":50,"sent_at":"2026-01-02T03:04:05Z","outcome":"acknowledged","status":201,"latency_ns":1000}` + "\n"

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
		{Type: TypePost, RequestID: "r-rpc-1", Variant: "rpc", Seq: 1, MovieID: 2, UserID: 3, Rating: 7.5, RatingTenths: 75, SentAt: at, Outcome: Acknowledged, Status: 201, LatencyNs: 12345},
		{Type: TypePost, RequestID: "r-stream-2", Variant: "stream", Seq: 2, MovieID: 900001, Rating: 10, RatingTenths: 100, UnknownMovie: true, SentAt: at, Outcome: Ambiguous, Cause: "timeout", LatencyNs: 1, Error: "Post \"http://x/<a>&\": \x01 naïve \\ \t"},
		{Type: TypePost, SentAt: time.Time{}, Outcome: Failed, Rating: 1},
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
