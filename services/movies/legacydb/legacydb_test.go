package legacydb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ratingslab/lab/services/model"
)

// seedSize is how many movies the embedded catalog holds.
var seedSize = strings.Count(strings.TrimSpace(seedCatalog), "\n") + 1

func newCatalog(t *testing.T) *DB {
	t.Helper()
	db, created, err := Create(filepath.Join(t.TempDir(), "legacy", "movies.db"))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if !created {
		t.Fatal("Create on a new path reported created=false")
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func allMovies(t *testing.T, db *DB) []model.Movie {
	t.Helper()
	movies, total, err := db.Movies(context.Background(), 0, MaxPage)
	if err != nil {
		t.Fatalf("Movies: %v", err)
	}
	if total != len(movies) {
		t.Fatalf("Movies total %d, got %d rows", total, len(movies))
	}
	return movies
}

func TestCreateSeedsTheCatalogOnceAndReopens(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "data", "legacy", "movies.db")
	db, created, err := Create(path)
	if err != nil || !created {
		t.Fatalf("Create new file: created=%v err=%v", created, err)
	}
	if seedSize < 120 {
		t.Fatalf("seed catalog has %d movies, want at least 120", seedSize)
	}
	seeded := allMovies(t, db)
	if len(seeded) != seedSize {
		t.Fatalf("seeded %d movies, want %d", len(seeded), seedSize)
	}
	for i, m := range seeded {
		if m.ID != int64(i+1) {
			t.Fatalf("seed ids are not 1..N: row %d has id %d", i, m.ID)
		}
		if m.Version != 1 || m.UpdatedAt.IsZero() || m.Title == "" || m.Country == "" || len(m.Genres) == 0 {
			t.Fatalf("seed movie incomplete: %+v", m)
		}
	}
	godfather := findTitle(t, seeded, "The Godfather")
	if godfather.ReleaseYear != 1972 || godfather.Country != "United States" || !slices.Equal(godfather.Genres, []string{"Crime", "Drama"}) {
		t.Fatalf("The Godfather seeded as %+v", godfather)
	}
	if got := findTitle(t, seeded, "Seven Samurai"); got.ReleaseYear != 1954 || got.Country != "Japan" {
		t.Fatalf("Seven Samurai seeded as %+v", got)
	}
	byID, err := db.Movie(ctx, godfather.ID)
	if err != nil || !movieEqual(byID, godfather) {
		t.Fatalf("Movie(%d) = %+v, %v; want %+v", godfather.ID, byID, err, godfather)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	again, created, err := Create(path)
	if err != nil || created {
		t.Fatalf("Create existing file: created=%v err=%v", created, err)
	}
	defer again.Close()
	if got := allMovies(t, again); !slices.EqualFunc(got, seeded, movieEqual) {
		t.Fatal("Create of an existing file changed the catalog")
	}
	opened, err := Open(path)
	if err != nil {
		t.Fatalf("Open existing catalog: %v", err)
	}
	defer opened.Close()
	if err := opened.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func TestConcurrentCreatesSeedOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "movies.db")
	var wg sync.WaitGroup
	results := make([]bool, 4)
	errs := make([]error, 4)
	for i := range results {
		wg.Go(func() {
			db, created, err := Create(path)
			results[i], errs[i] = created, err
			if err == nil {
				db.Close()
			}
		})
	}
	wg.Wait()
	creators := 0
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("Create %d: %v", i, errs[i])
		}
		if results[i] {
			creators++
		}
	}
	if creators != 1 {
		t.Fatalf("%d Creates reported created=true, want exactly 1", creators)
	}
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n := len(allMovies(t, db)); n != seedSize {
		t.Fatalf("catalog has %d movies, want %d", n, seedSize)
	}
}

func TestOpenRefusesWhatIsNotACatalog(t *testing.T) {
	dir := t.TempDir()

	missing := filepath.Join(dir, "missing.db")
	if _, err := Open(missing); err == nil || !strings.Contains(err.Error(), "no movie catalog at") {
		t.Fatalf("Open(missing) error = %v, want 'no movie catalog at'", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open created %s", missing)
	}

	corrupt := filepath.Join(dir, "corrupt.db")
	garbage := []byte(strings.Repeat("this is not a database file\n", 200))
	if err := os.WriteFile(corrupt, garbage, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, open := range map[string]func(string) error{
		"Open":   func(p string) error { _, err := Open(p); return err },
		"Create": func(p string) error { _, _, err := Create(p); return err },
	} {
		if err := open(corrupt); err == nil || !strings.Contains(err.Error(), "not a lab movie catalog") {
			t.Errorf("%s(corrupt) error = %v, want 'not a lab movie catalog'", name, err)
		}
	}
	if b, _ := os.ReadFile(corrupt); string(b) != string(garbage) {
		t.Error("opening a corrupt file modified it")
	}

	foreign := filepath.Join(dir, "foreign.db")
	other, err := sql.Open("sqlite", foreign)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Exec(`CREATE TABLE invoices (id INTEGER PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	other.Close()
	if _, err := Open(foreign); err == nil || !strings.Contains(err.Error(), "not a lab movie catalog") {
		t.Errorf("Open(foreign sqlite) error = %v, want 'not a lab movie catalog'", err)
	}
	if _, _, err := Create(foreign); err == nil || !strings.Contains(err.Error(), "not a lab movie catalog") {
		t.Errorf("Create(foreign sqlite) error = %v, want 'not a lab movie catalog'", err)
	}
}

func TestMoviesPagesInIDOrder(t *testing.T) {
	ctx := context.Background()
	db := newCatalog(t)
	var ids []int64
	for offset := 0; offset < seedSize+50; offset += 50 {
		page, total, err := db.Movies(ctx, offset, 50)
		if err != nil {
			t.Fatal(err)
		}
		if total != seedSize {
			t.Fatalf("total %d, want %d", total, seedSize)
		}
		if want := min(50, max(0, seedSize-offset)); len(page) != want {
			t.Fatalf("page at offset %d has %d movies, want %d", offset, len(page), want)
		}
		for _, m := range page {
			ids = append(ids, m.ID)
		}
	}
	if len(ids) != seedSize || !slices.IsSorted(ids) || ids[0] != 1 {
		t.Fatalf("paging returned ids %v", ids)
	}
	for _, bad := range []struct{ offset, limit int }{{-1, 10}, {0, 0}, {0, MaxPage + 1}} {
		if _, _, err := db.Movies(ctx, bad.offset, bad.limit); err == nil {
			t.Errorf("Movies(%d, %d) accepted", bad.offset, bad.limit)
		}
	}
	if _, err := db.Movie(ctx, 999999); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Movie(999999) error = %v, want ErrNotFound", err)
	}
}

func TestAddAndEditBumpVersionAndUpdatedAt(t *testing.T) {
	ctx := context.Background()
	db := newCatalog(t)
	seedTime := allMovies(t, db)[0].UpdatedAt

	added, err := db.Add(ctx, model.Movie{Title: "  The Lab Movie ", ReleaseYear: 2024, Country: "Nowhere", Genres: []string{"Documentary", " "}})
	if err != nil {
		t.Fatal(err)
	}
	if added.ID != int64(seedSize+1) || added.Version != 1 || added.Title != "The Lab Movie" ||
		!slices.Equal(added.Genres, []string{"Documentary"}) || !added.UpdatedAt.After(seedTime) {
		t.Fatalf("Add returned %+v", added)
	}
	if got, _ := db.Movie(ctx, added.ID); !movieEqual(got, added) {
		t.Fatalf("stored %+v, Add returned %+v", got, added)
	}
	explicit, err := db.Add(ctx, model.Movie{ID: 5000, Title: "Far Away", ReleaseYear: 1999})
	if err != nil || explicit.ID != 5000 {
		t.Fatalf("Add with id 5000: %+v, %v", explicit, err)
	}
	if _, err := db.Add(ctx, model.Movie{ID: 5000, Title: "Again", ReleaseYear: 1999}); !errors.Is(err, ErrExists) {
		t.Fatalf("Add of a taken id: %v, want ErrExists", err)
	}

	edited, err := db.Edit(ctx, added.ID, func(m *model.Movie) {
		m.Title = "The Lab Movie (Director's Cut)"
		m.Genres = append(m.Genres, "Drama")
	})
	if err != nil {
		t.Fatal(err)
	}
	if edited.Version != 2 || !edited.UpdatedAt.After(added.UpdatedAt) || edited.Title != "The Lab Movie (Director's Cut)" ||
		!slices.Equal(edited.Genres, []string{"Documentary", "Drama"}) || edited.ReleaseYear != 2024 {
		t.Fatalf("Edit returned %+v", edited)
	}
	noop, err := db.Edit(ctx, added.ID, func(*model.Movie) {})
	if err != nil || noop.Version != 3 || !noop.UpdatedAt.After(edited.UpdatedAt) {
		t.Fatalf("an edit that changes nothing is still a change event: %+v, %v", noop, err)
	}
	if _, err := db.Edit(ctx, 999999, func(*model.Movie) {}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Edit of a missing movie: %v, want ErrNotFound", err)
	}
}

func TestAddAndEditRejectBadFieldsAndWriteNothing(t *testing.T) {
	ctx := context.Background()
	db := newCatalog(t)
	before := allMovies(t, db)
	for _, tc := range []struct {
		movie model.Movie
		want  string
	}{
		{model.Movie{Title: "", ReleaseYear: 2000}, "title must not be empty"},
		{model.Movie{Title: "Old", ReleaseYear: 1850}, "release_year 1850 is out of range 1870..2100"},
		{model.Movie{Title: "Future", ReleaseYear: 2101}, "release_year 2101 is out of range"},
		{model.Movie{ID: -3, Title: "Neg", ReleaseYear: 2000}, "movie_id -3 must be positive"},
		{model.Movie{Title: "Pipes", ReleaseYear: 2000, Genres: []string{"Drama|Comedy"}}, `genres: genre "Drama|Comedy"`},
		{model.Movie{Title: "Nul\x00", ReleaseYear: 2000}, "title contains a control character (U+0000) at byte 3"},
		{model.Movie{Title: "Ok", ReleaseYear: 2000, Country: "N\nO"}, "country contains a control character (U+000A)"},
	} {
		if _, err := db.Add(ctx, tc.movie); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Add(%+v) error = %v, want %q", tc.movie, err, tc.want)
		}
	}
	for _, tc := range []struct {
		edit func(*model.Movie)
		want string
	}{
		{func(m *model.Movie) { m.ReleaseYear = 3000 }, "release_year 3000 is out of range"},
		{func(m *model.Movie) { m.Title = "   " }, "title must not be empty"},
		{func(m *model.Movie) { m.ID = 2 }, "movie_id cannot be changed"},
	} {
		if _, err := db.Edit(ctx, 1, tc.edit); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Edit error = %v, want %q", err, tc.want)
		}
	}
	if after := allMovies(t, db); !slices.EqualFunc(after, before, movieEqual) {
		t.Fatal("a rejected Add or Edit changed the catalog")
	}
}

func TestChangesReadsEveryRowOnceAndResumesFromAPosition(t *testing.T) {
	ctx := context.Background()
	db := newCatalog(t)

	// Snapshot in small pages, persisting the position as a connector would.
	var seen []model.Movie
	saved := mustJSON(t, Position{})
	for range seedSize + 1 {
		var pos Position
		if err := json.Unmarshal(saved, &pos); err != nil {
			t.Fatal(err)
		}
		page, next, err := db.Changes(ctx, pos, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			if next != pos {
				t.Fatalf("an empty page moved the position from %+v to %+v", pos, next)
			}
			break
		}
		seen = append(seen, page...)
		saved = mustJSON(t, next)
	}
	if len(seen) != seedSize {
		t.Fatalf("Changes from the start returned %d movies, want %d", len(seen), seedSize)
	}
	if !slices.IsSortedFunc(seen, comparePosition) {
		t.Fatal("Changes is not ordered by (updated_at, movie_id)")
	}

	var pos Position
	json.Unmarshal(saved, &pos)
	edited, err := db.Edit(ctx, 42, func(m *model.Movie) { m.Country = "Elsewhere" })
	if err != nil {
		t.Fatal(err)
	}
	added, err := db.Add(ctx, model.Movie{Title: "Newcomer", ReleaseYear: 2025})
	if err != nil {
		t.Fatal(err)
	}
	page, next, err := db.Changes(ctx, pos, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 2 || !movieEqual(page[0], edited) || !movieEqual(page[1], added) {
		t.Fatalf("after the snapshot Changes returned %+v, want the edit then the add", page)
	}
	if next != PositionOf(added) {
		t.Fatalf("next position %+v, want %+v", next, PositionOf(added))
	}
	if page, _, _ := db.Changes(ctx, next, 100); len(page) != 0 {
		t.Fatalf("Changes after the last change returned %+v", page)
	}
	if _, _, err := db.Changes(ctx, next, 0); err == nil {
		t.Fatal("Changes accepted limit 0")
	}
}

// The connector and `lab data` are different processes with their own
// connections: a reader polling Changes while two writers commit must see
// every committed row, because no write can commit with a timestamp below
// one already read.
func TestChangesMissesNothingWhileOtherConnectionsWrite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "movies.db")
	reader, _, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	_, start, err := reader.Changes(ctx, Position{}, MaxPage)
	if err != nil {
		t.Fatal(err)
	}

	const writers, perWriter = 2, 25
	var wg sync.WaitGroup
	writeErrs := make(chan error, writers*perWriter)
	for w := range writers {
		db, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		wg.Go(func() {
			for i := range perWriter {
				_, err := db.Add(ctx, model.Movie{ID: int64(10000 + w*1000 + i), Title: "Concurrent", ReleaseYear: 2000})
				writeErrs <- err
				if _, err := db.Edit(ctx, int64(1+i), func(m *model.Movie) { m.Title += "!" }); err != nil {
					writeErrs <- err
				}
			}
		})
	}

	added := map[int64]bool{}
	pos := start
	deadline := time.Now().Add(20 * time.Second)
	for len(added) < writers*perWriter && time.Now().Before(deadline) {
		page, next, err := reader.Changes(ctx, pos, 5)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page {
			if comparePosition(model.Movie{ID: pos.ID, UpdatedAt: time.UnixMicro(pos.UpdatedAt)}, m) >= 0 {
				t.Fatalf("Changes returned %+v at or before position %+v", m, pos)
			}
			if m.ID >= 10000 {
				added[m.ID] = true
			}
		}
		pos = next
	}
	wg.Wait()
	close(writeErrs)
	for err := range writeErrs {
		if err != nil {
			t.Fatalf("writer: %v", err)
		}
	}
	// Drain what was committed after the loop stopped.
	for range writers * perWriter * 2 {
		page, next, err := reader.Changes(ctx, pos, MaxPage)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, m := range page {
			if m.ID >= 10000 {
				added[m.ID] = true
			}
		}
		pos = next
	}
	if len(added) != writers*perWriter {
		t.Fatalf("reader saw %d of %d added movies", len(added), writers*perWriter)
	}
	edited, err := reader.Movie(ctx, 1)
	if err != nil || edited.Version != 1+writers {
		t.Fatalf("movie 1 after %d edits: %+v, %v", writers, edited, err)
	}
}

func TestImportUpsertsByIDAndSkipsUnchangedRows(t *testing.T) {
	ctx := context.Background()
	db := newCatalog(t)
	before, _ := db.Movie(ctx, 1)

	dat := "1::" + before.Title + " (Restored)::" + itoa(before.ReleaseYear) + "::95::Germany::7.9::1000::Fantasy|Horror::::F. W. Murnau::::::::\n" +
		"\n" +
		"900::A New Film::2024::::Iceland::::::Drama::::::::::::\n"
	res, err := db.ImportReport(ctx, strings.NewReader(dat), "dat")
	if err != nil {
		t.Fatal(err)
	}
	if res != (ImportResult{Rows: 2, Inserted: 1, Updated: 1}) {
		t.Fatalf("import result %+v", res)
	}
	updated, _ := db.Movie(ctx, 1)
	if updated.Title != before.Title+" (Restored)" || updated.Version != 2 || !updated.UpdatedAt.After(before.UpdatedAt) {
		t.Fatalf("movie 1 after import: %+v", updated)
	}
	inserted, err := db.Movie(ctx, 900)
	if err != nil || inserted.Title != "A New Film" || inserted.Country != "Iceland" || inserted.Version != 1 {
		t.Fatalf("movie 900 after import: %+v, %v", inserted, err)
	}

	n, err := db.Import(ctx, strings.NewReader(dat), "dat")
	if err != nil || n != 2 {
		t.Fatalf("re-import: %d, %v", n, err)
	}
	if again, _ := db.Movie(ctx, 1); !movieEqual(again, updated) {
		t.Fatalf("re-importing an identical row bumped it: %+v", again)
	}

	// CSV: columns in any order, extra columns ignored, absent columns kept.
	csvFile := "title,release_year,imdb_url,movie_id\n" +
		"\"Nosferatu, a Symphony of Horror\",1922,https://example.invalid,1\n" +
		"Short Film,2020,,901\n"
	res, err = db.ImportReport(ctx, strings.NewReader(csvFile), "csv")
	if err != nil {
		t.Fatal(err)
	}
	if res != (ImportResult{Rows: 2, Inserted: 1, Updated: 1}) {
		t.Fatalf("csv import result %+v", res)
	}
	m1, _ := db.Movie(ctx, 1)
	if m1.Title != "Nosferatu, a Symphony of Horror" || m1.Country != "Germany" || !slices.Equal(m1.Genres, []string{"Fantasy", "Horror"}) || m1.Version != 3 {
		t.Fatalf("movie 1 after csv import: %+v", m1)
	}

	withGenres := "movie_id,title,release_year,country,genres\n901,Short Film,2020,Chile,Animation|Short\n"
	if _, err := db.Import(ctx, strings.NewReader(withGenres), "csv"); err != nil {
		t.Fatal(err)
	}
	if m, _ := db.Movie(ctx, 901); m.Country != "Chile" || !slices.Equal(m.Genres, []string{"Animation", "Short"}) {
		t.Fatalf("movie 901 after csv import: %+v", m)
	}
}

func TestImportOfAMalformedFileNamesLineAndFieldAndWritesNothing(t *testing.T) {
	ctx := context.Background()
	db := newCatalog(t)
	good := "1::Good::2001::::X::::::Drama::::::::::::\n"
	datRow := func(id, title, year string) string {
		return id + "::" + title + "::" + year + "::::X::::::Drama::::::::::::\n"
	}
	for _, tc := range []struct {
		name, format, file, want string
	}{
		{"year not a number", "dat",
			datRow("500", "A", "2001") + datRow("501", "B", "2001") + datRow("502", "C", "2001") +
				datRow("503", "D", "2001") + datRow("504", "E", "2001") + datRow("505", "F", "2001") +
				datRow("506", "G", "19x5"), `line 7: release_year "19x5" is not a year`},
		{"year out of range", "dat", good + datRow("2", "Old", "1850"), "line 2: release_year 1850 is out of range 1870..2100"},
		{"empty title", "dat", good + datRow("2", "", "1990"), "line 2: title must not be empty"},
		{"id zero", "dat", good + datRow("0", "Zero", "1990"), "line 2: movie_id 0 must be positive"},
		{"id not a number", "dat", good + datRow("abc", "Zero", "1990"), `line 2: movie_id "abc" is not an integer`},
		{"too few fields", "dat", good + "2::Short::1990\n", "line 2: has 3 fields, want 14"},
		{"bad runtime", "dat", good + "2::T::1990::long::X::::::Drama::::::::::::\n", `line 2: runtime "long"`},
		{"bad rating", "dat", good + "2::T::1990::::X::11::::Drama::::::::::::\n", `line 2: rating "11"`},
		{"repeated id", "dat", good + good, "line 2: movie_id 1 repeats line 1"},
		{"unknown format", "xml", good, `format "xml" is not supported`},
		{"csv missing column", "csv", "movie_id,title\n1,A\n", "line 1: header has no release_year column"},
		{"csv empty", "csv", "", "line 1: missing header row"},
		{"csv bad year", "csv", "movie_id,title,release_year\n1,A,2001\n2,B,MCMXC\n", `line 3: release_year "MCMXC" is not a year`},
		{"csv ragged row", "csv", "movie_id,title,release_year\n1,A,2001\n2,B\n", "line 3: wrong number of fields"},
		{"csv empty title", "csv", "movie_id,title,release_year\n1,A,2001\n2, ,2001\n", "line 3: title must not be empty"},
		{"NUL in a title", "dat", good + datRow("2", "Bad\x00Title", "1990"), "line 2: title contains a control character (U+0000) at byte 3"},
		{"escape in an actor", "dat", good + "2::T::1990::::X::::::Drama::A\x1b[31m::::::::::\n", "line 2: actors contains a control character (U+001B)"},
		{"csv newline in a quoted title", "csv", "movie_id,title,release_year\n1,\"Two\nLines\",2001\n", "line 2: title contains a control character (U+000A) at byte 3"},
		{"csv tab in a genre", "csv", "movie_id,title,release_year,genres\n1,A,2001,Dra\tma\n", "line 2: genres contains a control character (U+0009)"},
		{"a 10 MB line", "dat", good + "2::" + strings.Repeat("t", 10<<20) + "::1990::::X::::::Drama::::::::::::\n", "line 2: longer than 1048576 bytes (1 MiB), the most one line of an import may hold"},
		{"csv a 10 MB line", "csv", "movie_id,title,release_year\n1,A,2001\n2," + strings.Repeat("t", 10<<20) + ",2001\n", "line 3: longer than 1048576 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := allMovies(t, db)
			n, err := db.Import(ctx, strings.NewReader(tc.file), tc.format)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Import error = %v, want %q", err, tc.want)
			}
			if n != 0 {
				t.Fatalf("Import reported %d rows on error", n)
			}
			if after := allMovies(t, db); !slices.EqualFunc(after, before, movieEqual) {
				t.Fatal("a rejected import changed the catalog")
			}
		})
	}
}

func TestQueryDelaySlowsReadsAndHonoursContext(t *testing.T) {
	db := newCatalog(t)
	const delay = 150 * time.Millisecond
	db.SetQueryDelay(delay)
	if db.QueryDelay() != delay {
		t.Fatalf("QueryDelay = %v", db.QueryDelay())
	}
	for name, read := range map[string]func(context.Context) error{
		"Movie":   func(ctx context.Context) error { _, err := db.Movie(ctx, 1); return err },
		"Movies":  func(ctx context.Context) error { _, _, err := db.Movies(ctx, 0, 10); return err },
		"Changes": func(ctx context.Context) error { _, _, err := db.Changes(ctx, Position{}, 10); return err },
	} {
		start := time.Now()
		if err := read(context.Background()); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if took := time.Since(start); took < delay {
			t.Errorf("%s took %v with a %v query delay", name, took, delay)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := read(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v", name, err)
		}
	}
	if err := db.Ping(context.Background()); err != nil {
		t.Fatalf("Ping under query delay: %v", err)
	}
	db.SetQueryDelay(0)
	if db.QueryDelay() != 0 {
		t.Fatal("SetQueryDelay(0) did not clear the delay")
	}
}

func findTitle(t *testing.T, movies []model.Movie, title string) model.Movie {
	t.Helper()
	for _, m := range movies {
		if m.Title == title {
			return m
		}
	}
	t.Fatalf("no movie titled %q", title)
	return model.Movie{}
}

func movieEqual(a, b model.Movie) bool {
	return a.ID == b.ID && a.Title == b.Title && a.ReleaseYear == b.ReleaseYear && a.Country == b.Country &&
		slices.Equal(a.Genres, b.Genres) && a.UpdatedAt.Equal(b.UpdatedAt) && a.Version == b.Version
}

func comparePosition(a, b model.Movie) int {
	if c := a.UpdatedAt.Compare(b.UpdatedAt); c != 0 {
		return c
	}
	return int(a.ID - b.ID)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func itoa(n int) string { return strconv.Itoa(n) }
