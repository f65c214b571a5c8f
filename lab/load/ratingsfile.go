package load

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// FileSource replays a ratings file as a sequence of rating requests.
type FileSource struct {
	records []fileRecord
}

type fileRecord struct {
	movie, user int32
	tenths      uint8
}

// Len is the number of ratings in the file.
func (f *FileSource) Len() uint64 { return uint64(len(f.records)) }

// Request implements Source.
func (f *FileSource) Request(seq uint64) (Request, bool) {
	if seq >= uint64(len(f.records)) {
		return Request{}, false
	}
	r := f.records[seq]
	return Request{Seq: seq, Kind: KindRating, MovieID: int64(r.movie), UserID: int64(r.user), Tenths: int64(r.tenths)}, true
}

// LineError is one malformed line of a ratings file.
type LineError struct {
	Line int    `json:"line"`
	Err  string `json:"error"`
}

func (e LineError) String() string { return fmt.Sprintf("line %d: %s", e.Line, e.Err) }

// BadLinesError lists the malformed lines of a ratings file.
type BadLinesError struct {
	Name  string
	Lines []LineError // the first maxReportedLines
	Total int
}

const maxReportedLines = 20

func (e *BadLinesError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d malformed line(s)", e.Name, e.Total)
	for _, l := range e.Lines {
		b.WriteString("\n  ")
		b.WriteString(l.String())
	}
	if e.Total > len(e.Lines) {
		fmt.Fprintf(&b, "\n  ... and %d more", e.Total-len(e.Lines))
	}
	b.WriteString("\n(use --skip-bad to replay the good lines only)")
	return b.String()
}

// maxFileRatings bounds a replayed file (all of it is held in memory,
// 12 bytes a rating).
const maxFileRatings = 50_000_000

// ReadRatingsFile parses a ratings file: the original demo's ratings.dat
// ("user_id::movie_id::rating", an optional fourth "::timestamp" field is
// ignored) or JSON lines ({"user_id":..,"movie_id":..,"rating":..}; other
// fields are ignored, and a ledger's header, end and get (read) lines are skipped, so a
// ledger replays as is). Blank lines are skipped. With skipBad, malformed
// lines are dropped and returned; without it, any malformed line makes the
// whole file an error (*BadLinesError), so nothing is sent.
func ReadRatingsFile(r io.Reader, name string, skipBad bool) (*FileSource, []LineError, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	src := &FileSource{}
	bad := &BadLinesError{Name: name}
	var skipped []LineError
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var (
			rec  fileRecord
			skip bool
			err  error
		)
		if line[0] == '{' {
			rec, skip, err = parseJSONRating(line)
		} else {
			rec, err = parseDatRating(string(line))
		}
		if err != nil {
			le := LineError{Line: lineNo, Err: err.Error()}
			bad.Total++
			if len(bad.Lines) < maxReportedLines {
				bad.Lines = append(bad.Lines, le)
			}
			skipped = append(skipped, le)
			continue
		}
		if skip {
			continue
		}
		if len(src.records) >= maxFileRatings {
			return nil, nil, fmt.Errorf("%s: more than %d ratings; split the file", name, maxFileRatings)
		}
		src.records = append(src.records, rec)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, nil, fmt.Errorf("%s: line %d: longer than 1 MiB", name, lineNo+1)
		}
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	if bad.Total > 0 && !skipBad {
		return nil, nil, bad
	}
	if len(src.records) == 0 {
		return nil, skipped, fmt.Errorf("%s: no ratings to replay", name)
	}
	return src, skipped, nil
}

func parseDatRating(line string) (fileRecord, error) {
	f := strings.Split(line, "::")
	if len(f) != 3 && len(f) != 4 {
		return fileRecord{}, fmt.Errorf("want user_id::movie_id::rating, got %d field(s) in %q", len(f), clip(line))
	}
	user, err := parseID("user_id", f[0])
	if err != nil {
		return fileRecord{}, err
	}
	movie, err := parseID("movie_id", f[1])
	if err != nil {
		return fileRecord{}, err
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(f[2]), 64)
	if err != nil {
		return fileRecord{}, fmt.Errorf("rating: %q is not a number", f[2])
	}
	t, err := ratingTenths(v)
	if err != nil {
		return fileRecord{}, err
	}
	return fileRecord{movie: movie, user: user, tenths: t}, nil
}

func parseID(field, s string) (int32, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 1 || n > math.MaxInt32 {
		return 0, fmt.Errorf("%s: %q is not an id in 1..%d", field, s, math.MaxInt32)
	}
	return int32(n), nil
}

func ratingTenths(v float64) (uint8, error) {
	t := math.Round(v * 10)
	if math.Abs(t-v*10) > 1e-9 || t < 10 || t > 100 {
		return 0, fmt.Errorf("rating: %v is not in 1..10 with at most one decimal", v)
	}
	return uint8(t), nil
}

func parseJSONRating(line []byte) (fileRecord, bool, error) {
	var v struct {
		Type    string   `json:"type"`
		UserID  *int64   `json:"user_id"`
		MovieID *int64   `json:"movie_id"`
		Rating  *float64 `json:"rating"`
	}
	if err := json.Unmarshal(line, &v); err != nil {
		return fileRecord{}, false, fmt.Errorf("not a JSON rating: %v", err)
	}
	if v.Type == "header" || v.Type == "end" || v.Type == "get" {
		return fileRecord{}, true, nil // a ledger's bookends and reads
	}
	if v.MovieID == nil {
		return fileRecord{}, false, errors.New("movie_id: missing")
	}
	if v.Rating == nil {
		return fileRecord{}, false, errors.New("rating: missing")
	}
	var rec fileRecord
	if *v.MovieID < 1 || *v.MovieID > math.MaxInt32 {
		return fileRecord{}, false, fmt.Errorf("movie_id: %d is not an id in 1..%d", *v.MovieID, math.MaxInt32)
	}
	rec.movie = int32(*v.MovieID)
	if v.UserID != nil {
		if *v.UserID < 1 || *v.UserID > math.MaxInt32 {
			return fileRecord{}, false, fmt.Errorf("user_id: %d is not an id in 1..%d", *v.UserID, math.MaxInt32)
		}
		rec.user = int32(*v.UserID)
	}
	t, err := ratingTenths(*v.Rating)
	if err != nil {
		return fileRecord{}, false, err
	}
	rec.tenths = t
	return rec, false, nil
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}
