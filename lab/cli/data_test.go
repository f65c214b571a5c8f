package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/services/model"
	"github.com/ratingslab/lab/services/movies/legacydb"
)

// runLab runs the lab command line in-process against a state dir and
// returns what it printed.
func runLab(t *testing.T, dir string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	getenv := func(string) string { return "" }
	err = Run(context.Background(), append([]string{"lab", "--dir", dir}, args...), getenv, &out, &errOut)
	return out.String(), errOut.String(), err
}

func mustRunLab(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, errOut, err := runLab(t, dir, args...)
	if err != nil {
		t.Fatalf("lab %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// catalogState reads the whole catalog straight from the file.
func catalogState(t *testing.T, dir string) []model.Movie {
	t.Helper()
	db, err := legacydb.Open(layout.Dir(dir).LegacyDB())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	movies, _, err := db.Movies(context.Background(), 0, legacydb.MaxPage)
	if err != nil {
		t.Fatal(err)
	}
	return movies
}

func decodeMovie(t *testing.T, out string) model.Movie {
	t.Helper()
	var m model.Movie
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("output is not a movie as JSON: %v\n%s", err, out)
	}
	return m
}

func TestDataCommandsCreateTheCatalogWhenMissing(t *testing.T) {
	dir := t.TempDir()
	out, errOut, err := runLab(t, dir, "data", "movies", "--limit", "3")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut, "Created the legacy movies DB "+layout.Dir(dir).LegacyDB()) {
		t.Fatalf("first run did not say it created the catalog; stderr: %q", errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "ID") || !strings.HasPrefix(lines[1], "1 ") {
		t.Fatalf("want header, 3 movies and a footer; got:\n%s", out)
	}
	seeded := len(catalogState(t, dir))
	if !strings.Contains(lines[4], "Movies 1-3 of "+itoa(seeded)) {
		t.Fatalf("footer %q", lines[4])
	}

	_, errOut, err = runLab(t, dir, "data", "movies", "--limit", "1")
	if err != nil || errOut != "" {
		t.Fatalf("second run: err=%v stderr=%q (the catalog exists now)", err, errOut)
	}

	out = mustRunLab(t, dir, "data", "movies", "--limit", "1000", "--json")
	var listed []model.Movie
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(listed, catalogState(t, dir), sameMovie) {
		t.Fatal("--json list differs from the catalog")
	}
	out = mustRunLab(t, dir, "data", "movies", "--offset", "100000")
	if !strings.Contains(out, "No movies at offset 100000") {
		t.Fatalf("listing past the end: %q", out)
	}
}

func TestDataMovieAddShowEdit(t *testing.T) {
	dir := t.TempDir()
	added := decodeMovie(t, mustRunLab(t, dir, "data", "movie", "add",
		"--title", "Sholay", "--year", "1975", "--country", "India", "--genres", "Action, Adventure"))
	seeded := len(catalogState(t, dir)) - 1
	if added.ID != int64(seeded+1) || added.Version != 1 || added.Title != "Sholay" || added.ReleaseYear != 1975 ||
		added.Country != "India" || !slices.Equal(added.Genres, []string{"Action", "Adventure"}) {
		t.Fatalf("added %+v", added)
	}
	explicit := decodeMovie(t, mustRunLab(t, dir, "data", "movie", "add", "--id", "1000", "--title", "The Lab Movie", "--year", "2025"))
	if explicit.ID != 1000 || explicit.Country != "" || explicit.Genres != nil {
		t.Fatalf("added with --id: %+v", explicit)
	}

	shown := decodeMovie(t, mustRunLab(t, dir, "data", "movie", "show", itoa(int(added.ID))))
	if !sameMovie(shown, added) {
		t.Fatalf("show printed %+v, add printed %+v", shown, added)
	}

	edited := decodeMovie(t, mustRunLab(t, dir, "data", "movie", "edit", itoa(int(added.ID)), "--title", "Sholay (1975)", "--genres", ""))
	if edited.Version != 2 || !edited.UpdatedAt.After(added.UpdatedAt) || edited.Title != "Sholay (1975)" ||
		edited.Genres != nil || edited.ReleaseYear != 1975 || edited.Country != "India" {
		t.Fatalf("edited %+v", edited)
	}
	if got := decodeMovie(t, mustRunLab(t, dir, "data", "movie", "show", itoa(int(added.ID)))); !sameMovie(got, edited) {
		t.Fatalf("show after edit printed %+v, want %+v", got, edited)
	}
}

func TestDataImportMovies(t *testing.T) {
	dir := t.TempDir()
	files := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(files, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	csvFile := write("extra.csv", "movie_id,title,release_year,country,genres,notes\n"+
		"500,Sholay,1975,India,Action|Adventure,classic\n"+
		"1,Nosferatu (restored),1922,Germany,Fantasy|Horror,\n")
	out := mustRunLab(t, dir, "data", "import", "movies", csvFile)
	if !strings.Contains(out, "Imported 2 movies from "+csvFile) || !strings.Contains(out, "1 new, 1 changed, 0 unchanged") {
		t.Fatalf("import output %q", out)
	}
	byID := map[int64]model.Movie{}
	for _, m := range catalogState(t, dir) {
		byID[m.ID] = m
	}
	if m := byID[500]; m.Title != "Sholay" || !slices.Equal(m.Genres, []string{"Action", "Adventure"}) {
		t.Fatalf("movie 500 after import: %+v", m)
	}
	if m := byID[1]; m.Title != "Nosferatu (restored)" || m.Version != 2 {
		t.Fatalf("movie 1 after import: %+v", m)
	}

	// A movies.dat file under another extension, with --format.
	datFile := write("more.txt", "501::Stalker::1979::162::Soviet Union::8.0::::Drama|Sci-Fi::::Andrei Tarkovsky::::::::\n")
	out = mustRunLab(t, dir, "data", "import", "movies", datFile, "--format", "dat")
	if !strings.Contains(out, "1 new") {
		t.Fatalf("dat import output %q", out)
	}

	before := catalogState(t, dir)
	bad := write("bad.csv", "movie_id,title,release_year\n502,Fine,2001\n503,Broken,19x5\n")
	_, _, err := runLab(t, dir, "data", "import", "movies", bad)
	if err == nil || !strings.Contains(err.Error(), `line 3: release_year "19x5" is not a year`) ||
		!strings.Contains(err.Error(), "nothing was imported") {
		t.Fatalf("bad import error: %v", err)
	}
	if !slices.EqualFunc(catalogState(t, dir), before, sameMovie) {
		t.Fatal("a rejected import changed the catalog")
	}
}

func TestDataRejectsBadInputNamingTheFlagAndWritesNothing(t *testing.T) {
	dir := t.TempDir()
	mustRunLab(t, dir, "data", "movies", "--limit", "1") // create the catalog
	before := catalogState(t, dir)
	files := t.TempDir()
	unknownExt := filepath.Join(files, "movies.xml")
	os.WriteFile(unknownExt, []byte("<movies/>"), 0o644)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"data", "movie", "add", "--year", "1990"}, "--title is required"},
		{[]string{"data", "movie", "add", "--title", "X"}, "--year is required"},
		{[]string{"data", "movie", "add", "--title", " ", "--year", "1990"}, "--title must not be empty"},
		{[]string{"data", "movie", "add", "--title", "X", "--year", "1850"}, "--year 1850 is out of range 1870..2100"},
		{[]string{"data", "movie", "add", "--title", "X", "--year", "19x5"}, `"--year"`},
		{[]string{"data", "movie", "add", "--title", "X", "--year", "1990", "--id", "-4"}, "--id -4 must be a positive movie id"},
		{[]string{"data", "movie", "add", "--title", "X", "--year", "1990", "--id", "1"}, "--id 1 is already taken"},
		{[]string{"data", "movie", "add", "--title", "X", "--year", "1990", "--genres", "Drama|Comedy"}, "--genres"},
		{[]string{"data", "movie", "add", "--title", "X", "--year", "1990", "--country", "A|B"}, "--country"},
		{[]string{"data", "movie", "edit", "1"}, "nothing to edit"},
		{[]string{"data", "movie", "edit", "abc", "--title", "X"}, `ID "abc" is not a movie id`},
		{[]string{"data", "movie", "edit", "1", "--year", "2200"}, "--year 2200 is out of range"},
		{[]string{"data", "movie", "edit", "99999", "--title", "X"}, "movie 99999 is not in"},
		{[]string{"data", "movie", "show", "99999"}, "movie 99999 is not in"},
		{[]string{"data", "movie", "show", "0"}, `ID "0" is not a movie id`},
		{[]string{"data", "movie", "show"}, "needs ID"},
		{[]string{"data", "movies", "--limit", "0"}, "--limit 0 must be 1.."},
		{[]string{"data", "movies", "--offset", "-1"}, "--offset -1 must not be negative"},
		{[]string{"data", "import", "movies"}, "needs FILE"},
		{[]string{"data", "import", "movies", unknownExt}, "pass --format dat or --format csv"},
		{[]string{"data", "import", "movies", unknownExt, "--format", "xml"}, `--format "xml" must be dat or csv`},
		{[]string{"data", "import", "movies", "-"}, "--format is required when reading stdin"},
		{[]string{"data", "import", "movies", filepath.Join(files, "missing.csv")}, "FILE: open"},
	} {
		_, _, err := runLab(t, dir, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("lab %s: error = %v, want %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
	if !slices.EqualFunc(catalogState(t, dir), before, sameMovie) {
		t.Fatal("rejected commands changed the catalog")
	}
}

func TestDataHelpTeachesByExample(t *testing.T) {
	for _, path := range [][]string{
		{"data"}, {"data", "import", "movies"}, {"data", "movie", "add"}, {"data", "movie", "edit"},
		{"data", "movie", "show"}, {"data", "movies"},
	} {
		out := mustRunLab(t, t.TempDir(), append(path, "--help")...)
		if !strings.Contains(out, "Examples:") || !strings.Contains(out, "lab data") {
			t.Errorf("lab %s --help has no examples:\n%s", strings.Join(path, " "), out)
		}
	}
}

func sameMovie(a, b model.Movie) bool {
	return a.ID == b.ID && a.Title == b.Title && a.ReleaseYear == b.ReleaseYear && a.Country == b.Country &&
		slices.Equal(a.Genres, b.Genres) && a.UpdatedAt.Equal(b.UpdatedAt) && a.Version == b.Version
}

func itoa(n int) string { return strconv.Itoa(n) }
