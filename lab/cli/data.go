package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ratingslab/lab/services/model"
	"github.com/ratingslab/lab/services/movies/legacydb"
)

// newDataCmd is `lab data`: the legacy movie catalog, read and changed the
// way its owners would — straight in the database, behind the services'
// backs. The commands work with or without a running lab.
func newDataCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Look at and change the legacy movie catalog (import, add, edit, list)",
		Long: `The legacy movie catalog is a SQLite file, <dir>/data/legacy/movies.db, the
"legacy relational DB" of the demo. Both variants depend on it differently:

  rpc     movies-rpc reads it on every request, so a change is visible at once
          (and a slow or locked DB slows every rating).
  stream  movies-connect polls it for changed rows (timestamp+incrementing, like a
          Kafka Connect JDBC source) and publishes them to the compacted "movies"
          topic; the change reaches the stream variant's views a moment later.

Every add, edit or import bumps the movie's version and updated_at, which is
what movies-connect picks up. The commands write straight to the file and work
whether or not the lab is up; a missing file is created with the seed catalog
(about 180 real films).`,
		Example: `  lab data movies --limit 10
  lab data movie show 42
  lab data movie add --title "Sholay" --year 1975 --country India --genres Action,Adventure
  lab data movie edit 42 --title "Director's cut"
  lab data import movies ./more-movies.csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newDataImportCmd(g), newDataMovieCmd(g), newDataMoviesCmd(g))
	return cmd
}

func newDataImportCmd(g *globals) *cobra.Command {
	imp := &cobra.Command{
		Use:   "import",
		Short: "Import rows into the legacy catalog from a file",
		Long:  `Import rows into the legacy catalog. See "lab data import movies --help".`,
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	var format string
	movies := &cobra.Command{
		Use:   "movies FILE",
		Short: "Upsert movies from a movies.dat or CSV file, all or nothing",
		Long: `Upsert every movie of FILE into the legacy catalog by movie id, in one
transaction: if any row is malformed, the error names its line and field and
nothing is imported. Rows identical to the stored ones are left alone (no new
version, so movies-connect does not republish them).

Formats (--format, by default from the file's extension; FILE "-" reads stdin
and needs --format):

  dat  the demo's movies.dat: one movie per line, 14 fields separated by "::"
         id::title::release_year::runtime::country::rating::votes::genres::
         actors::directors::composers::screenwriters::cinematographer::
         production_companies
       list fields are "|"-separated; runtime, rating, votes may be empty.
  csv  a header row naming movie_id, title, release_year and optionally
       country and genres (any order, other columns ignored); genres
       "|"-separated. Columns a CSV does not carry keep their stored values.

Rules for every row: movie_id > 0, title not empty, release_year 1870..2100,
each movie_id at most once per file.`,
		Example: `  # a CSV with a header row
  printf 'movie_id,title,release_year,country,genres\n500,Sholay,1975,India,Action|Adventure\n' > extra.csv
  lab data import movies extra.csv

  # movies.dat format from stdin
  echo '501::Stalker::1979::162::Soviet Union::8.0::::Drama|Sci-Fi::::Andrei Tarkovsky::::::::' |
    lab data import movies - --format dat`,
		Args: dataArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			file := args[0]
			f, err := importFormat(file, format, cmd.Flags().Changed("format"))
			if err != nil {
				return err
			}
			var in io.Reader = cmd.InOrStdin()
			if file != "-" {
				fh, err := os.Open(file)
				if err != nil {
					return fmt.Errorf("FILE: %w", err)
				}
				defer fh.Close()
				in = fh
			}
			db, err := openCatalog(g)
			if err != nil {
				return err
			}
			defer db.Close()
			res, err := db.ImportReport(cmd.Context(), in, f)
			if err != nil {
				return fmt.Errorf("import %s: %w (nothing was imported)", file, err)
			}
			fmt.Fprintf(g.stdout, "Imported %d movies from %s into %s: %d new, %d changed, %d unchanged.\n",
				res.Rows, file, db.Path(), res.Inserted, res.Updated, res.Unchanged)
			return nil
		},
	}
	movies.Flags().StringVar(&format, "format", "", "file `format`: dat or csv (default: from the file's extension)")
	imp.AddCommand(movies)
	return imp
}

// importFormat picks the import format from --format or the file extension.
func importFormat(file, format string, explicit bool) (string, error) {
	if explicit {
		if format != "dat" && format != "csv" {
			return "", fmt.Errorf("--format %q must be dat or csv", format)
		}
		return format, nil
	}
	switch strings.ToLower(filepath.Ext(file)) {
	case ".dat":
		return "dat", nil
	case ".csv":
		return "csv", nil
	}
	if file == "-" {
		return "", errors.New("--format is required when reading stdin (dat or csv)")
	}
	return "", fmt.Errorf("cannot tell the format of %s from its extension; pass --format dat or --format csv", file)
}

func newDataMovieCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "movie",
		Short: "Show, add or edit one movie of the legacy catalog",
		Long: `Show, add or edit one movie of the legacy catalog. Add and edit print the
movie as stored, with its new version and updated_at.`,
		Example: `  lab data movie show 42
  lab data movie add --title "Sholay" --year 1975 --country India --genres Action,Adventure
  lab data movie edit 42 --year 1999`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newDataMovieShowCmd(g), newDataMovieAddCmd(g), newDataMovieEditCmd(g))
	return cmd
}

func newDataMovieShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Print one movie as JSON",
		Long: `Print one movie of the legacy catalog as JSON, as movies-rpc serves it and
movies-connect publishes it: movie_id, title, release_year, country, genres,
updated_at and version.`,
		Example: `  lab data movie show 42
  lab data movie show 42 | jq .version`,
		Args: dataArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseMovieID(args[0])
			if err != nil {
				return err
			}
			db, err := openCatalog(g)
			if err != nil {
				return err
			}
			defer db.Close()
			m, err := db.Movie(cmd.Context(), id)
			if errors.Is(err, legacydb.ErrNotFound) {
				return fmt.Errorf("movie %d is not in %s (list them with: lab data movies)", id, db.Path())
			}
			if err != nil {
				return err
			}
			return printJSON(g.stdout, m)
		},
	}
}

// movieFlags are the editable fields as flags, shared by add and edit.
type movieFlags struct {
	title   string
	year    int
	country string
	genres  []string
}

func (f *movieFlags) register(cmd *cobra.Command, required bool) {
	how := ""
	if required {
		how = " (required)"
	}
	cmd.Flags().StringVar(&f.title, "title", "", "`title` of the movie"+how)
	cmd.Flags().IntVar(&f.year, "year", 0, fmt.Sprintf("release `year`, %d..%d%s", legacydb.MinYear, legacydb.MaxYear, how))
	cmd.Flags().StringVar(&f.country, "country", "", "production `country`, e.g. \"Japan\"")
	cmd.Flags().StringSliceVar(&f.genres, "genres", nil, "comma-separated `genres`, e.g. Crime,Drama (\"\" clears them)")
}

// apply copies the flags the user gave onto m, checking each one so the
// error names the flag.
func (f *movieFlags) apply(cmd *cobra.Command, m *model.Movie) (changed bool, err error) {
	fl := cmd.Flags()
	if fl.Changed("title") {
		if strings.TrimSpace(f.title) == "" {
			return false, errors.New("--title must not be empty")
		}
		m.Title, changed = strings.TrimSpace(f.title), true
	}
	if fl.Changed("year") {
		if f.year < legacydb.MinYear || f.year > legacydb.MaxYear {
			return false, fmt.Errorf("--year %d is out of range %d..%d", f.year, legacydb.MinYear, legacydb.MaxYear)
		}
		m.ReleaseYear, changed = f.year, true
	}
	if fl.Changed("country") {
		if strings.Contains(f.country, "|") {
			return false, fmt.Errorf("--country %q must not contain '|'", f.country)
		}
		m.Country, changed = strings.TrimSpace(f.country), true
	}
	if fl.Changed("genres") {
		var genres []string
		for _, genre := range f.genres {
			genre = strings.TrimSpace(genre)
			if strings.Contains(genre, "|") {
				return false, fmt.Errorf("--genres: %q must not contain '|' (separate genres with commas)", genre)
			}
			if genre != "" {
				genres = append(genres, genre)
			}
		}
		m.Genres, changed = genres, true
	}
	return changed, nil
}

func newDataMovieAddCmd(g *globals) *cobra.Command {
	var f movieFlags
	var id int64
	cmd := &cobra.Command{
		Use:   "add --title TITLE --year YEAR [--country C] [--genres a,b] [--id N]",
		Short: "Add a movie to the legacy catalog",
		Long: `Add a movie to the legacy catalog at version 1 and print it as JSON. Without
--id it takes the next free id; an id already in use is an error (change an
existing movie with "lab data movie edit").

With the lab up, the new movie is served by movies-rpc at once and appears on
the "movies" topic as soon as movies-connect polls.

An experiment can make the same edit at a set time, during a fault, and have
the load rate the new movie: the movie-add action (experiments/README.md,
"Actions"; lab chaos run movies-catalog-edit).`,
		Example: `  lab data movie add --title "Sholay" --year 1975 --country India --genres Action,Adventure
  lab data movie add --id 1000 --title "The Lab Movie" --year 2025`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, name := range []string{"title", "year"} {
				if !cmd.Flags().Changed(name) {
					return fmt.Errorf("--%s is required", name)
				}
			}
			if cmd.Flags().Changed("id") && id <= 0 {
				return fmt.Errorf("--id %d must be a positive movie id (leave it out for the next free id)", id)
			}
			m := model.Movie{ID: id}
			if _, err := f.apply(cmd, &m); err != nil {
				return err
			}
			db, err := openCatalog(g)
			if err != nil {
				return err
			}
			defer db.Close()
			added, err := db.Add(cmd.Context(), m)
			if errors.Is(err, legacydb.ErrExists) {
				return fmt.Errorf("--id %d is already taken (change that movie with: lab data movie edit %d)", id, id)
			}
			if err != nil {
				return err
			}
			return printJSON(g.stdout, added)
		},
	}
	f.register(cmd, true)
	cmd.Flags().Int64Var(&id, "id", 0, "movie `id` to use (default: the next free id)")
	return cmd
}

func newDataMovieEditCmd(g *globals) *cobra.Command {
	var f movieFlags
	cmd := &cobra.Command{
		Use:   "edit ID [--title T] [--year Y] [--country C] [--genres a,b]",
		Short: "Change fields of a movie in the legacy catalog",
		Long: `Change the given fields of a movie, bump its version and updated_at, and
print it as JSON. Fields without a flag keep their values; at least one flag
is required. --genres replaces the whole list.

Editing a movie is the way to watch a change travel: movies-rpc serves the new
title at once, while the stream variant shows it once movies-connect has
published the new version to the "movies" topic and the views have caught up.`,
		Example: `  lab data movie edit 42 --title "Director's cut"
  lab data movie edit 42 --year 1999 --genres Drama,Romance
  lab data movie edit 42 --genres ""   # clear the genres`,
		Args: dataArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseMovieID(args[0])
			if err != nil {
				return err
			}
			// Check the flags before touching the file.
			if changed, err := f.apply(cmd, &model.Movie{}); err != nil {
				return err
			} else if !changed {
				return errors.New("nothing to edit: give at least one of --title, --year, --country, --genres")
			}
			db, err := openCatalog(g)
			if err != nil {
				return err
			}
			defer db.Close()
			edited, err := db.Edit(cmd.Context(), id, func(m *model.Movie) { f.apply(cmd, m) })
			if errors.Is(err, legacydb.ErrNotFound) {
				return fmt.Errorf("movie %d is not in %s (add it with: lab data movie add --id %d ...)", id, db.Path(), id)
			}
			if err != nil {
				return err
			}
			return printJSON(g.stdout, edited)
		},
	}
	f.register(cmd, false)
	return cmd
}

func newDataMoviesCmd(g *globals) *cobra.Command {
	var limit, offset int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "movies [--limit N] [--offset N] [--json]",
		Short: "List the legacy catalog, ordered by id",
		Long: `List movies of the legacy catalog ordered by id: id, year, title, country,
genres, version. --json prints a JSON array of the same movies as
"lab data movie show" prints them.`,
		Example: `  lab data movies
  lab data movies --limit 20 --offset 100
  lab data movies --limit 1000 --json | jq -r '.[] | select(.country == "Japan") | .title'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 1 || limit > legacydb.MaxPage {
				return fmt.Errorf("--limit %d must be 1..%d", limit, legacydb.MaxPage)
			}
			if offset < 0 {
				return fmt.Errorf("--offset %d must not be negative", offset)
			}
			db, err := openCatalog(g)
			if err != nil {
				return err
			}
			defer db.Close()
			movies, total, err := db.Movies(cmd.Context(), offset, limit)
			if err != nil {
				return err
			}
			if asJSON {
				if movies == nil {
					movies = []model.Movie{}
				}
				return printJSON(g.stdout, movies)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tYEAR\tTITLE\tCOUNTRY\tGENRES\tVERSION")
			for _, m := range movies {
				fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%d\n", m.ID, m.ReleaseYear, m.Title, m.Country, strings.Join(m.Genres, ","), m.Version)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			first, last := offset+1, offset+len(movies)
			if len(movies) == 0 {
				fmt.Fprintf(g.stdout, "No movies at offset %d; the catalog holds %d.\n", offset, total)
			} else {
				fmt.Fprintf(g.stdout, "Movies %d-%d of %d (%s).\n", first, last, total, db.Path())
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 50, fmt.Sprintf("how many movies to list, 1..%d", legacydb.MaxPage))
	cmd.Flags().IntVar(&offset, "offset", 0, "how many movies to skip first")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array instead of a table")
	return cmd
}

// openCatalog opens the lab's legacy DB, creating it with the seed catalog
// when missing so the data commands work before the first `lab up`.
func openCatalog(g *globals) (*legacydb.DB, error) {
	path := g.dir().LegacyDB()
	db, created, err := legacydb.Create(path)
	if err != nil {
		return nil, err
	}
	if created {
		fmt.Fprintf(g.stderr, "Created the legacy movies DB %s (seed catalog).\n", path)
	}
	return db, nil
}

// parseMovieID reads the ID argument.
func parseMovieID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("ID %q is not a movie id (a positive integer)", s)
	}
	return id, nil
}

// dataArgs is cobra.ExactArgs with an error that names the missing argument.
func dataArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return fmt.Errorf("%s needs %s (got %d arguments); see: %s --help",
				cmd.CommandPath(), strings.Join(names, " "), len(args), cmd.CommandPath())
		}
		return nil
	}
}
