package legacydb

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ratingslab/lab/services/model"
)

// record is one catalog row as a file carries it: the model fields plus the
// legacy-only columns, and the source line for error messages.
type record struct {
	model.Movie
	RuntimeMinutes      sql.NullInt64
	Rating              sql.NullFloat64
	Votes               sql.NullInt64
	Actors              []string
	Directors           []string
	Composers           []string
	Screenwriters       []string
	Cinematographer     []string
	ProductionCompanies []string
	line                int
}

// column is one writable column and how to read its value from a record.
type column struct {
	name  string
	value func(*record) any
}

var (
	colTitle   = column{"title", func(r *record) any { return r.Title }}
	colYear    = column{"release_year", func(r *record) any { return r.ReleaseYear }}
	colCountry = column{"country", func(r *record) any { return r.Country }}
	colGenres  = column{"genres", func(r *record) any { return joinList(r.Genres) }}

	// movieOnlyColumns are the columns model.Movie carries.
	movieOnlyColumns = []column{colTitle, colYear, colCountry, colGenres}
	// datColumns are all columns: movies.dat carries every one.
	datColumns = append(append([]column(nil), movieOnlyColumns...),
		column{"runtime_minutes", func(r *record) any { return r.RuntimeMinutes }},
		column{"rating", func(r *record) any { return r.Rating }},
		column{"votes", func(r *record) any { return r.Votes }},
		column{"actors", func(r *record) any { return joinList(r.Actors) }},
		column{"directors", func(r *record) any { return joinList(r.Directors) }},
		column{"composers", func(r *record) any { return joinList(r.Composers) }},
		column{"screenwriters", func(r *record) any { return joinList(r.Screenwriters) }},
		column{"cinematographer", func(r *record) any { return joinList(r.Cinematographer) }},
		column{"production_companies", func(r *record) any { return joinList(r.ProductionCompanies) }},
	)
)

// ImportResult counts what an import did. Rows = Inserted + Updated + Unchanged.
type ImportResult struct {
	Rows      int `json:"rows"`
	Inserted  int `json:"inserted"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"` // identical to the stored row: version and updated_at kept
}

// Import reads a catalog file and upserts every row by movie id in one
// transaction, returning how many rows the file held. See ImportReport.
func (db *DB) Import(ctx context.Context, r io.Reader, format string) (int, error) {
	res, err := db.ImportReport(ctx, r, format)
	return res.Rows, err
}

// ImportReport reads a catalog file and upserts every row by movie id in one
// transaction: either the whole file is applied or, on the first malformed
// row, nothing is (the error names line and field). Formats:
//
//   - "dat": the demo's movies.dat, one movie per line, 14 fields separated
//     by "::": id::title::release_year::runtime::country::rating::votes::
//     genres::actors::directors::composers::screenwriters::cinematographer::
//     production_companies. List fields are '|'-separated; runtime, rating
//     and votes may be empty. Blank lines and lines starting with '#' are
//     skipped.
//   - "csv": a header row naming at least movie_id, title and release_year
//     (country and genres optional, any order, other columns ignored);
//     genres '|'-separated. Columns the file does not carry keep their
//     stored values on update.
//
// A changed row gets version+1 and a new updated_at; a row identical to the
// stored one is left alone, so re-importing a file is not a change event.
// The same id twice in one file is an error.
func (db *DB) ImportReport(ctx context.Context, r io.Reader, format string) (ImportResult, error) {
	var (
		rows []record
		cols []column
		err  error
	)
	limited := &lineLimitReader{r: r}
	switch format {
	case "dat":
		rows, err = parseDat(limited)
		cols = datColumns
	case "csv":
		rows, cols, err = parseCSV(limited)
	default:
		return ImportResult{}, fmt.Errorf("format %q is not supported (want dat or csv)", format)
	}
	if err != nil {
		return ImportResult{}, err
	}
	var res ImportResult
	err = db.write(ctx, func(tx *sql.Tx) error {
		res, err = upsert(ctx, tx, rows, cols)
		return err
	})
	if err != nil {
		return ImportResult{}, err
	}
	return res, nil
}

// upsert writes rows inside tx, all stamped with one new updated_at; only
// rows that differ from the stored ones are updated.
func upsert(ctx context.Context, tx *sql.Tx, rows []record, cols []column) (ImportResult, error) {
	res := ImportResult{Rows: len(rows)}
	if len(rows) == 0 {
		return res, nil
	}
	ts, err := nextTimestamp(ctx, tx)
	if err != nil {
		return res, err
	}
	names := make([]string, len(cols))
	marks := make([]string, len(cols))
	sets := make([]string, len(cols))
	diffs := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
		marks[i] = "?"
		sets[i] = c.name + " = excluded." + c.name
		diffs[i] = "movies." + c.name + " IS NOT excluded." + c.name
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO movies (movie_id, `+strings.Join(names, ", ")+`, updated_at, version)
		VALUES (?, `+strings.Join(marks, ", ")+`, ?, 1)
		ON CONFLICT (movie_id) DO UPDATE SET `+strings.Join(sets, ", ")+`,
			updated_at = excluded.updated_at, version = movies.version + 1
		WHERE `+strings.Join(diffs, " OR "))
	if err != nil {
		return res, fmt.Errorf("legacydb: upsert: %w", err)
	}
	defer stmt.Close()
	exists, err := tx.PrepareContext(ctx, `SELECT count(*) FROM movies WHERE movie_id = ?`)
	if err != nil {
		return res, fmt.Errorf("legacydb: upsert: %w", err)
	}
	defer exists.Close()
	args := make([]any, 0, len(cols)+2)
	for i := range rows {
		r := &rows[i]
		var n int
		if err := exists.QueryRowContext(ctx, r.ID).Scan(&n); err != nil {
			return res, fmt.Errorf("legacydb: upsert movie %d: %w", r.ID, err)
		}
		args = append(args[:0], r.ID)
		for _, c := range cols {
			args = append(args, c.value(r))
		}
		args = append(args, ts)
		out, err := stmt.ExecContext(ctx, args...)
		if err != nil {
			return res, fmt.Errorf("legacydb: upsert movie %d: %w", r.ID, err)
		}
		changed, err := out.RowsAffected()
		if err != nil {
			return res, fmt.Errorf("legacydb: upsert movie %d: %w", r.ID, err)
		}
		switch {
		case n == 0:
			res.Inserted++
		case changed > 0:
			res.Updated++
		default:
			res.Unchanged++
		}
	}
	return res, nil
}

// datFields names the movies.dat fields in order, for error messages.
var datFields = []string{"movie_id", "title", "release_year", "runtime", "country", "rating", "votes",
	"genres", "actors", "directors", "composers", "screenwriters", "cinematographer", "production_companies"}

func parseDat(r *lineLimitReader) ([]record, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), MaxLineBytes+2) // the lineLimitReader says it first
	var rows []record
	seen := map[int64]int{}
	line := 0
	for sc.Scan() {
		line++
		if r.tooLong != nil {
			return nil, r.tooLong // the scanner hands out the cut line first
		}
		text := strings.TrimRight(sc.Text(), "\r")
		if line == 1 {
			text = strings.TrimPrefix(text, "\uFEFF")
		}
		if strings.TrimSpace(text) == "" || strings.HasPrefix(text, "#") {
			continue
		}
		rec, err := parseDatLine(text)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if first, ok := seen[rec.ID]; ok {
			return nil, fmt.Errorf("line %d: movie_id %d repeats line %d", line, rec.ID, first)
		}
		seen[rec.ID] = line
		rec.line = line
		rows = append(rows, rec)
	}
	if err := sc.Err(); err != nil {
		if _, tooLong := errors.AsType[*LineTooLongError](err); tooLong {
			return nil, err
		}
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	return rows, nil
}

func parseDatLine(text string) (record, error) {
	if !utf8.ValidString(text) {
		return record{}, errors.New("is not valid UTF-8")
	}
	f := strings.Split(text, "::")
	if len(f) != len(datFields) {
		return record{}, fmt.Errorf("has %d fields, want %d (%s)", len(f), len(datFields), strings.Join(datFields, "::"))
	}
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
		if err := plainText(datFields[i], f[i]); err != nil {
			return record{}, err
		}
	}
	var rec record
	var err error
	if rec.ID, err = parseID(f[0]); err != nil {
		return record{}, err
	}
	rec.Title = f[1]
	if rec.ReleaseYear, err = parseYear(f[2]); err != nil {
		return record{}, err
	}
	if f[3] != "" {
		n, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil || n < 1 || n > 10000 {
			return record{}, fmt.Errorf("runtime %q is not a number of minutes (1..10000)", f[3])
		}
		rec.RuntimeMinutes = sql.NullInt64{Int64: n, Valid: true}
	}
	rec.Country = f[4]
	if f[5] != "" {
		v, err := strconv.ParseFloat(f[5], 64)
		if err != nil || v < 0 || v > 10 {
			return record{}, fmt.Errorf("rating %q is not a number in 0..10", f[5])
		}
		rec.Rating = sql.NullFloat64{Float64: v, Valid: true}
	}
	if f[6] != "" {
		n, err := strconv.ParseInt(f[6], 10, 64)
		if err != nil || n < 0 {
			return record{}, fmt.Errorf("votes %q is not a non-negative integer", f[6])
		}
		rec.Votes = sql.NullInt64{Int64: n, Valid: true}
	}
	rec.Genres = splitList(f[7])
	rec.Actors = splitList(f[8])
	rec.Directors = splitList(f[9])
	rec.Composers = splitList(f[10])
	rec.Screenwriters = splitList(f[11])
	rec.Cinematographer = splitList(f[12])
	rec.ProductionCompanies = splitList(f[13])
	if err := validate(rec.Movie); err != nil {
		return record{}, err
	}
	return rec, nil
}

func parseCSV(r io.Reader) ([]record, []column, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 0 // every row as wide as the header
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil, errors.New("line 1: missing header row (movie_id,title,release_year,country,genres)")
	}
	if err != nil {
		return nil, nil, csvError(err)
	}
	idx := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		if i == 0 {
			h = strings.TrimPrefix(h, "\uFEFF")
		}
		if _, dup := idx[h]; dup && h != "" {
			return nil, nil, fmt.Errorf("line 1: column %q appears twice in the header", h)
		}
		idx[h] = i
	}
	for _, need := range []string{"movie_id", "title", "release_year"} {
		if _, ok := idx[need]; !ok {
			return nil, nil, fmt.Errorf("line 1: header has no %s column (want movie_id,title,release_year[,country][,genres])", need)
		}
	}
	cols := []column{colTitle, colYear}
	ci, hasCountry := idx["country"]
	gi, hasGenres := idx["genres"]
	if hasCountry {
		cols = append(cols, colCountry)
	}
	if hasGenres {
		cols = append(cols, colGenres)
	}
	var rows []record
	seen := map[int64]int{}
	for {
		f, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, csvError(err)
		}
		line, _ := cr.FieldPos(0)
		if len(f) == 1 && strings.TrimSpace(f[0]) == "" {
			continue
		}
		rec, err := parseCSVRow(f, idx, hasCountry, ci, hasGenres, gi)
		if err != nil {
			return nil, nil, fmt.Errorf("line %d: %w", line, err)
		}
		if first, ok := seen[rec.ID]; ok {
			return nil, nil, fmt.Errorf("line %d: movie_id %d repeats line %d", line, rec.ID, first)
		}
		seen[rec.ID] = line
		rec.line = line
		rows = append(rows, rec)
	}
	return rows, cols, nil
}

func parseCSVRow(f []string, idx map[string]int, hasCountry bool, ci int, hasGenres bool, gi int) (record, error) {
	for _, v := range f {
		if !utf8.ValidString(v) {
			return record{}, errors.New("is not valid UTF-8")
		}
	}
	var rec record
	var err error
	if rec.ID, err = parseID(strings.TrimSpace(f[idx["movie_id"]])); err != nil {
		return record{}, err
	}
	rec.Title = strings.TrimSpace(f[idx["title"]])
	if rec.ReleaseYear, err = parseYear(strings.TrimSpace(f[idx["release_year"]])); err != nil {
		return record{}, err
	}
	if hasCountry {
		rec.Country = strings.TrimSpace(f[ci])
	}
	if hasGenres {
		rec.Genres = splitList(f[gi])
	}
	if err := validate(rec.Movie); err != nil {
		return record{}, err
	}
	return rec, nil
}

// MaxLineBytes bounds one line of an import file (a movie's line is a few
// hundred bytes): a longer one is an error naming it, not a runaway read.
const MaxLineBytes = 1 << 20

// LineTooLongError is a line over MaxLineBytes.
type LineTooLongError struct{ Line int }

func (e *LineTooLongError) Error() string {
	return fmt.Sprintf("line %d: longer than %d bytes (1 MiB), the most one line of an import may hold", e.Line, MaxLineBytes)
}

// lineLimitReader fails a read as soon as a line exceeds MaxLineBytes, so
// that both formats say which line and the limit.
type lineLimitReader struct {
	r       io.Reader
	line    int // lines completed
	cur     int // bytes of the current line
	tooLong *LineTooLongError
}

func (l *lineLimitReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for i := range n {
		if p[i] == '\n' {
			l.line++
			l.cur = 0
			continue
		}
		if l.cur++; l.cur > MaxLineBytes {
			l.tooLong = &LineTooLongError{Line: l.line + 1}
			return i, l.tooLong
		}
	}
	return n, err
}

// csvError rewords encoding/csv errors as "line N: ...".
func csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("line %d: %w", pe.Line, pe.Err)
	}
	return err
}

func parseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("movie_id %q is not an integer", s)
	}
	if id <= 0 {
		return 0, fmt.Errorf("movie_id %d must be positive", id)
	}
	return id, nil
}

func parseYear(s string) (int, error) {
	y, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("release_year %q is not a year", s)
	}
	if y < MinYear || y > MaxYear {
		return 0, fmt.Errorf("release_year %d is out of range %d..%d", y, MinYear, MaxYear)
	}
	return y, nil
}
