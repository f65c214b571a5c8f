// Package ledger is the record `lab load` keeps of every request it sent and
// how it ended. The audit reads its ratings to check each variant's state
// after a run (lost acknowledged writes, duplicates, phantoms, ambiguous
// writes applied or not); reports check their latency figures against it;
// replay tools read it to know what was sent. The file format is documented
// in loadtests/README.md; what each outcome means is in docs/api.md.
//
// A ledger is JSON lines in <state dir>/ledgers/<run-id>.jsonl:
//
//	{"type":"header", ...}   once, first: what was run
//	{"type":"post", ...}     once per rating sent (POST /api/ratings), when its outcome is known
//	{"type":"get", ...}      once per read sent (GET /api/movies[/{id}]), when its outcome is known
//	{"type":"end", ...}      once, last: counts; absent if the process died
package ledger

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Version of the format. Readers reject every other version by name:
// version 1 recorded a rating whose outcome the server could not know (a
// timeout answered 503) as "failed", had no expected outcome and no reads,
// so its figures do not mean what version 2's do.
const Version = 2

// Line types.
const (
	TypeHeader = "header"
	TypePost   = "post"
	TypeGet    = "get"
	TypeEnd    = "end"
)

// Kinds of request (the load generator's, and the `kind` metric label).
const (
	KindRating = "rating" // POST /api/ratings: a "post" line
	KindMovie  = "movie"  // GET /api/movies/{id}: a "get" line
	KindList   = "list"   // GET /api/movies?offset=&limit=: a "get" line
)

// Outcome is how a request ended as the client saw it.
type Outcome string

// The outcomes (docs/api.md, "Outcomes", is the one definition).
const (
	// Acknowledged: 2xx. The variant promised to keep the rating.
	Acknowledged Outcome = "acknowledged"
	// Rejected: 4xx (or another non-2xx, non-5xx status): a definite no,
	// the request was invalid. Must not be applied.
	Rejected Outcome = "rejected"
	// Failed: a definite failure — 5xx other than 504, or never sent
	// (the request was not completely written). Must not be applied.
	Failed Outcome = "failed"
	// Ambiguous: the outcome is unknown — 504 (the server could not tell
	// whether it was applied), or written but no answer (timeout, reset,
	// interrupted run). May or may not have been applied.
	Ambiguous Outcome = "ambiguous"
)

// Outcomes lists every outcome in a stable order.
var Outcomes = []Outcome{Acknowledged, Rejected, Failed, Ambiguous}

// Valid reports whether o is one of Outcomes.
func (o Outcome) Valid() bool {
	for _, v := range Outcomes {
		if o == v {
			return true
		}
	}
	return false
}

// Header is the first line: what ran, against what, from when.
type Header struct {
	Type     string   `json:"type"`
	Version  int      `json:"version"`
	RunID    string   `json:"run_id"`
	Scenario string   `json:"scenario"`
	Seed     uint32   `json:"seed"`
	Variants []string `json:"variants"`
	// Targets maps each variant to the base URL it was sent to.
	Targets map[string]string `json:"targets"`
	// Source is "scenario" or "file:<path>" for a replayed ratings file.
	Source    string    `json:"source"`
	StartedAt time.Time `json:"started_at"`
	// Schedule describes the arrival rate in words ("constant 200/s for 1m").
	Schedule string `json:"schedule,omitempty"`
	// ExpectedPerVariant is how many requests (of all kinds) the schedule
	// holds for each variant.
	ExpectedPerVariant uint64 `json:"expected_per_variant"`
}

// Entry is one request and its outcome: a rating (Type "post", Kind
// "rating") or a read (Type "get", Kind "movie" or "list").
type Entry struct {
	Type string `json:"type"`
	// RequestID is the rating's idempotency key (ratings only).
	RequestID string `json:"request_id,omitempty"`
	Variant   string `json:"variant"`
	// Seq is the request's number in the run's sequence (all kinds count);
	// the same Seq carries the same request to every variant.
	Seq uint64 `json:"seq"`
	// Kind is "movie" or "list" on a get line; absent (rating) on a post.
	Kind string `json:"kind,omitempty"`
	// MovieID: the rated or read movie (absent for a list).
	MovieID      int64   `json:"movie_id,omitempty"`
	UserID       int64   `json:"user_id,omitempty"`
	Rating       float64 `json:"rating,omitempty"`
	RatingTenths int64   `json:"rating_tenths,omitempty"`
	// UnknownMovie marks a movie outside the catalog, which the generator
	// used on purpose: its Expected outcome is Rejected.
	UnknownMovie bool `json:"unknown_movie,omitempty"`
	// NewMovie marks a rating of a movie an experiment added to the
	// catalog during the run (its movie-add action). Expected is Rejected
	// when the variant refused it before it could have seen the movie
	// (docs/api.md, "Outcomes"); the audit checks no refusal was sent
	// after the variant first answered one with a 2xx.
	NewMovie bool `json:"new_movie,omitempty"`
	// Expected is the answer a correct variant gives: Acknowledged, or
	// Rejected for a request the generator made invalid on purpose. An
	// outcome other than Expected is a failure of the variant.
	Expected Outcome   `json:"expected"`
	SentAt   time.Time `json:"sent_at"`
	Outcome  Outcome   `json:"outcome"`
	// Status is the HTTP status, 0 when no answer came.
	Status int `json:"status,omitempty"`
	// Cause refines the outcome: 4xx, 5xx, outcome_unknown (504),
	// other_status, not_sent, timeout, conn_error, aborted.
	Cause     string        `json:"cause,omitempty"`
	LatencyNs time.Duration `json:"latency_ns"`
	Error     string        `json:"error,omitempty"`
	// Attempts lists every send of a rating the load generator retried
	// because its outcome was unknown (lab load --retries), with the same
	// request id; absent when it was sent once. Outcome is then the
	// rating's: acknowledged if an attempt was, ambiguous if any attempt
	// was, else the last attempt's.
	Attempts []Attempt `json:"attempts,omitempty"`
}

// Retries is how many times the rating was sent again (0: sent once).
func (e Entry) Retries() int { return max(len(e.Attempts)-1, 0) }

// Attempt is one send of a retried rating.
type Attempt struct {
	SentAt    time.Time     `json:"sent_at"`
	Status    int           `json:"status,omitempty"`
	Outcome   Outcome       `json:"outcome"`
	Cause     string        `json:"cause,omitempty"`
	LatencyNs time.Duration `json:"latency_ns"`
}

// KindOf is the entry's request kind ("rating" for a post line).
func (e Entry) KindOf() string {
	if e.Kind == "" {
		return KindRating
	}
	return e.Kind
}

// AsExpected reports whether the variant gave the answer a correct variant
// gives (see Expected).
func (e Entry) AsExpected() bool { return e.Outcome == e.Expected }

// UnexpectedRejection reports a 4xx to a request that was valid: the
// variant refused something it should have taken (a movie its table does
// not know yet, ...).
func (e Entry) UnexpectedRejection() bool {
	return e.Outcome == Rejected && e.Expected == Acknowledged
}

// End is the last line, written when the run finished or was interrupted and
// every request sent has its entry.
type End struct {
	Type        string    `json:"type"`
	EndedAt     time.Time `json:"ended_at"`
	Interrupted bool      `json:"interrupted"`
	// Posts counts the post entries per variant and outcome; Gets the get
	// entries.
	Posts map[string]map[Outcome]uint64 `json:"posts"`
	Gets  map[string]map[Outcome]uint64 `json:"gets,omitempty"`
}

// Ledger is a ledger file read whole.
type Ledger struct {
	Header Header
	// Entries are the ratings (post lines), in file order.
	Entries []Entry
	// Reads are the reads (get lines), in file order.
	Reads []Entry
	// End is nil when the file has no end line: the writer died mid-run and
	// requests may have been sent that have no entry.
	End *End
	// TruncatedLine is the 1-based number of an incomplete last line that
	// was ignored (a crash while writing), 0 if none.
	TruncatedLine int
}

// Complete reports whether every request sent has its entry.
func (l *Ledger) Complete() bool { return l.End != nil }

// Read reads a ledger file.
func Read(path string) (*Ledger, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	l := &Ledger{}
	h, end, trunc, err := Scan(f, func(e Entry) error {
		if e.Type == TypeGet {
			l.Reads = append(l.Reads, e)
		} else {
			l.Entries = append(l.Entries, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", path, err)
	}
	l.Header, l.End, l.TruncatedLine = h, end, trunc
	return l, nil
}

// Scan streams a ledger: fn is called for each entry (post and get lines)
// in file order. It
// returns the header, the end line (nil if absent) and the number of an
// ignored incomplete last line (0 if none). A malformed complete line is an
// error naming its line number.
func Scan(r io.Reader, fn func(Entry) error) (Header, *End, int, error) {
	var (
		h      Header
		end    *End
		lineNo int
	)
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return h, end, 0, fmt.Errorf("line %d: longer than the buffer", lineNo+1)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return h, end, 0, err
		}
		if len(line) == 0 && errors.Is(err, io.EOF) {
			break
		}
		lineNo++
		complete := line[len(line)-1] == '\n'
		if !complete {
			// The writer died mid-line: the line is lost, not corrupt.
			if lineNo == 1 {
				return h, end, 0, errors.New("no complete header line")
			}
			return h, end, lineNo, nil
		}
		if lineNo == 1 {
			if err := decodeStrict(line, &h); err != nil || h.Type != TypeHeader {
				return h, end, 0, fmt.Errorf("line 1: not a ledger header: %v", firstErr(err, "type is "+h.Type))
			}
			if h.Version != Version {
				return h, end, 0, fmt.Errorf("line 1: ledger version %d is not supported: this lab reads version %d only%s", h.Version, Version, versionHint(h.Version))
			}
			continue
		}
		if end != nil {
			return h, end, 0, fmt.Errorf("line %d: data after the end line", lineNo)
		}
		var probe struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(line, &probe); err != nil {
			return h, end, 0, fmt.Errorf("line %d: %v", lineNo, err)
		}
		switch probe.Type {
		case TypePost, TypeGet:
			var e Entry
			if err := decodeStrict(line, &e); err != nil {
				return h, end, 0, fmt.Errorf("line %d: %v", lineNo, err)
			}
			if err := e.check(); err != nil {
				return h, end, 0, fmt.Errorf("line %d: %v", lineNo, err)
			}
			if err := fn(e); err != nil {
				return h, end, 0, err
			}
		case TypeEnd:
			end = &End{}
			if err := decodeStrict(line, end); err != nil {
				return h, nil, 0, fmt.Errorf("line %d: %v", lineNo, err)
			}
		default:
			return h, end, 0, fmt.Errorf("line %d: unknown line type %q", lineNo, probe.Type)
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	if lineNo == 0 {
		return h, end, 0, errors.New("empty ledger: no header line")
	}
	return h, end, 0, nil
}

// versionHint says why another version cannot be read.
func versionHint(v int) string {
	switch {
	case v == 1:
		return " (version 1 recorded a rating whose outcome the server could not know as \"failed\" and had no expected outcome, so its audit would call such ratings phantoms; audit it with the lab release that wrote it)"
	case v > Version:
		return " (written by a newer lab)"
	}
	return ""
}

// check validates the fields a reader relies on.
func (e Entry) check() error {
	if !e.Outcome.Valid() {
		return fmt.Errorf("unknown outcome %q", e.Outcome)
	}
	if e.Expected != Acknowledged && e.Expected != Rejected {
		return fmt.Errorf("expected: want %q or %q, got %q", Acknowledged, Rejected, e.Expected)
	}
	switch {
	case e.Type == TypePost && e.Kind != "":
		return fmt.Errorf("kind: a post line is a rating and has no kind, got %q", e.Kind)
	case e.Type == TypeGet && e.Kind != KindMovie && e.Kind != KindList:
		return fmt.Errorf("kind: a get line is %q or %q, got %q", KindMovie, KindList, e.Kind)
	}
	return nil
}

func firstErr(err error, otherwise string) string {
	if err != nil {
		return err.Error()
	}
	return otherwise
}

func decodeStrict(line []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// Writer appends to a ledger file. It is safe for concurrent use. Lines are
// buffered and flushed by Flush (the engine calls it every second) and Close.
type Writer struct {
	mu    sync.Mutex
	path  string
	f     *os.File
	w     *bufio.Writer
	err   error
	posts map[string]map[Outcome]uint64
	gets  map[string]map[Outcome]uint64
	buf   []byte
}

// Create starts a new ledger at path (which must not exist) with its header.
func Create(path string, h Header) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	h.Type, h.Version = TypeHeader, Version
	w := &Writer{path: path, f: f, w: bufio.NewWriterSize(f, 256<<10), posts: map[string]map[Outcome]uint64{}, gets: map[string]map[Outcome]uint64{}}
	for _, v := range h.Variants {
		w.posts[v] = map[Outcome]uint64{}
	}
	w.writeLine(h)
	if err := w.Flush(); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// Path is the ledger's file name.
func (w *Writer) Path() string { return w.path }

func (w *Writer) writeLine(v any) {
	if w.err != nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		w.err = err
		return
	}
	b = append(b, '\n')
	if _, err := w.w.Write(b); err != nil {
		w.err = fmt.Errorf("ledger %s: %w", w.path, err)
	}
}

// Record appends one entry: a post line for a rating (Kind "" or
// "rating"), a get line for a read. Expected defaults to Acknowledged. The
// first write error sticks and is returned by every later call: a ledger
// with a hole must not look complete.
func (w *Writer) Record(e Entry) error {
	counts := w.posts
	e.Type = TypePost
	if e.Kind == KindRating {
		e.Kind = ""
	}
	if e.Kind != "" {
		e.Type, counts = TypeGet, w.gets
	}
	if e.Expected == "" {
		e.Expected = Acknowledged
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.buf = append(appendEntry(w.buf[:0], &e), '\n')
		if _, err := w.w.Write(w.buf); err != nil {
			w.err = fmt.Errorf("ledger %s: %w", w.path, err)
		}
	}
	if w.err == nil {
		if counts[e.Variant] == nil {
			counts[e.Variant] = map[Outcome]uint64{}
		}
		counts[e.Variant][e.Outcome]++
	}
	return w.err
}

// Flush pushes buffered lines to the file.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		if err := w.w.Flush(); err != nil {
			w.err = fmt.Errorf("ledger %s: %w", w.path, err)
		}
	}
	return w.err
}

// Err is the first write error, if any.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Close writes the end line, syncs and closes the file. Call it only when
// every request sent has been recorded.
func (w *Writer) Close(endedAt time.Time, interrupted bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	end := End{Type: TypeEnd, EndedAt: endedAt, Interrupted: interrupted, Posts: w.posts}
	if len(w.gets) > 0 {
		end.Gets = w.gets
	}
	w.writeLine(end)
	if w.err == nil {
		if err := w.w.Flush(); err != nil {
			w.err = fmt.Errorf("ledger %s: %w", w.path, err)
		}
	}
	if w.err == nil {
		if err := w.f.Sync(); err != nil {
			w.err = fmt.Errorf("ledger %s: %w", w.path, err)
		}
	}
	if err := w.f.Close(); err != nil && w.err == nil {
		w.err = fmt.Errorf("ledger %s: %w", w.path, err)
	}
	return w.err
}
