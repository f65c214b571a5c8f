// Package ledger is the record `lab load` keeps of every rating it sent and
// how it ended. The audit reads it to check each variant's state after a run
// (lost acknowledged writes, duplicates, phantoms); replay tools read it to
// know what was sent. The file format is documented in loadtests/README.md.
//
// A ledger is JSON lines in <state dir>/ledgers/<run-id>.jsonl:
//
//	{"type":"header", ...}   once, first: what was run
//	{"type":"post", ...}     once per rating request sent, when its outcome is known
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

// Version of the format; readers reject ledgers from a newer one.
const Version = 1

// Line types.
const (
	TypeHeader = "header"
	TypePost   = "post"
	TypeEnd    = "end"
)

// Outcome is how a request ended as the client saw it.
type Outcome string

const (
	// Acknowledged: 2xx. The variant promised to keep the rating.
	Acknowledged Outcome = "acknowledged"
	// Rejected: 4xx (or another non-2xx, non-5xx status). Must not be applied.
	Rejected Outcome = "rejected"
	// Failed: 5xx, or never sent (connection refused). Not acknowledged; a 5xx
	// rating may or may not have been applied.
	Failed Outcome = "failed"
	// Ambiguous: handed to a connection but no answer (timeout, reset,
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

// Entry is one rating request (POST /api/ratings) and its outcome.
type Entry struct {
	Type      string `json:"type"`
	RequestID string `json:"request_id"`
	Variant   string `json:"variant"`
	// Seq is the request's number in the run's sequence (all kinds count);
	// the same Seq carries the same rating to every variant.
	Seq          uint64  `json:"seq"`
	MovieID      int64   `json:"movie_id"`
	UserID       int64   `json:"user_id"`
	Rating       float64 `json:"rating"`
	RatingTenths int64   `json:"rating_tenths"`
	// UnknownMovie marks a movie outside the catalog: expected Rejected.
	UnknownMovie bool      `json:"unknown_movie,omitempty"`
	SentAt       time.Time `json:"sent_at"`
	Outcome      Outcome   `json:"outcome"`
	// Status is the HTTP status, 0 when no answer came.
	Status int `json:"status,omitempty"`
	// Cause refines the outcome: 4xx, 5xx, other_status, not_sent, timeout,
	// conn_error, aborted.
	Cause     string        `json:"cause,omitempty"`
	LatencyNs time.Duration `json:"latency_ns"`
	Error     string        `json:"error,omitempty"`
}

// End is the last line, written when the run finished or was interrupted and
// every request sent has its entry.
type End struct {
	Type        string    `json:"type"`
	EndedAt     time.Time `json:"ended_at"`
	Interrupted bool      `json:"interrupted"`
	// Posts counts the post entries per variant and outcome.
	Posts map[string]map[Outcome]uint64 `json:"posts"`
}

// Ledger is a ledger file read whole.
type Ledger struct {
	Header  Header
	Entries []Entry
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
		l.Entries = append(l.Entries, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", path, err)
	}
	l.Header, l.End, l.TruncatedLine = h, end, trunc
	return l, nil
}

// Scan streams a ledger: fn is called for each entry in file order. It
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
			if h.Version > Version || h.Version < 1 {
				return h, end, 0, fmt.Errorf("line 1: ledger version %d, this reader knows 1..%d", h.Version, Version)
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
		case TypePost:
			var e Entry
			if err := decodeStrict(line, &e); err != nil {
				return h, end, 0, fmt.Errorf("line %d: %v", lineNo, err)
			}
			if !e.Outcome.Valid() {
				return h, end, 0, fmt.Errorf("line %d: unknown outcome %q", lineNo, e.Outcome)
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
	buf   []byte
}

// Create starts a new ledger at path (which must not exist) with its header.
func Create(path string, h Header) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	h.Type, h.Version = TypeHeader, Version
	w := &Writer{path: path, f: f, w: bufio.NewWriterSize(f, 256<<10), posts: map[string]map[Outcome]uint64{}}
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

// Record appends one entry. The first write error sticks and is returned by
// every later call: a ledger with a hole must not look complete.
func (w *Writer) Record(e Entry) error {
	e.Type = TypePost
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.buf = append(appendEntry(w.buf[:0], &e), '\n')
		if _, err := w.w.Write(w.buf); err != nil {
			w.err = fmt.Errorf("ledger %s: %w", w.path, err)
		}
	}
	if w.err == nil {
		if w.posts[e.Variant] == nil {
			w.posts[e.Variant] = map[Outcome]uint64{}
		}
		w.posts[e.Variant][e.Outcome]++
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
	w.writeLine(End{Type: TypeEnd, EndedAt: endedAt, Interrupted: interrupted, Posts: w.posts})
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
