package legacydb

import (
	"context"
	"database/sql"
	_ "embed"
	"fmt"
	"strings"
)

// seedCatalog is the catalog a new file starts with, in the demo's movies.dat
// format.
//
//go:embed catalog/movies.dat
var seedCatalog string

// schema is the legacy catalog. List columns hold '|'-separated values, as the
// original movies.dat does. updated_at is unix microseconds; (updated_at,
// movie_id) is indexed because it is the change-capture cursor.
const schema = `
CREATE TABLE lab_meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
CREATE TABLE movies (
	movie_id             INTEGER PRIMARY KEY CHECK (movie_id > 0),
	title                TEXT    NOT NULL CHECK (title <> ''),
	release_year         INTEGER NOT NULL CHECK (release_year BETWEEN 1870 AND 2100),
	runtime_minutes      INTEGER,
	country              TEXT    NOT NULL DEFAULT '',
	rating               REAL,
	votes                INTEGER,
	genres               TEXT    NOT NULL DEFAULT '',
	actors               TEXT    NOT NULL DEFAULT '',
	directors            TEXT    NOT NULL DEFAULT '',
	composers            TEXT    NOT NULL DEFAULT '',
	screenwriters        TEXT    NOT NULL DEFAULT '',
	cinematographer      TEXT    NOT NULL DEFAULT '',
	production_companies TEXT    NOT NULL DEFAULT '',
	updated_at           INTEGER NOT NULL,
	version              INTEGER NOT NULL CHECK (version > 0)
);
CREATE INDEX movies_by_change ON movies (updated_at, movie_id);
`

// metaHighWater is the lab_meta key holding the largest updated_at ever
// handed out, so timestamps keep increasing even if rows are deleted by hand.
const metaHighWater = "updated_at_high_water_us"

// initialize makes a new (empty) file a seeded catalog, or checks that an
// existing one is a catalog. It runs under the write lock, so two processes
// creating the same file at once seed it once.
func (db *DB) initialize(ctx context.Context) (created bool, err error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		if isBusy(err) {
			return false, err // retried by the caller
		}
		return false, fmt.Errorf("legacydb: %s is not a lab movie catalog: %w", db.path, err)
	}
	defer tx.Rollback()
	var objects int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master`).Scan(&objects); err != nil {
		return false, fmt.Errorf("legacydb: %s is not a lab movie catalog: %w", db.path, err)
	}
	if objects > 0 {
		return false, db.checkMeta(ctx, tx)
	}
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return false, fmt.Errorf("legacydb: create schema: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO lab_meta (key, value) VALUES ('schema', ?), ('schema_version', ?), (?, '0')`,
		catalogSchema, schemaVersion, metaHighWater); err != nil {
		return false, fmt.Errorf("legacydb: create schema: %w", err)
	}
	rows, err := parseDat(&lineLimitReader{r: strings.NewReader(seedCatalog)})
	if err != nil {
		return false, fmt.Errorf("legacydb: embedded seed catalog: %w", err)
	}
	if _, err := upsert(ctx, tx, rows, datColumns); err != nil {
		return false, fmt.Errorf("legacydb: seed catalog: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("legacydb: seed catalog: %w", err)
	}
	return true, nil
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// checkMeta proves the file is a lab catalog of the schema this code knows.
func (db *DB) checkMeta(ctx context.Context, q queryer) error {
	var name, version sql.NullString
	err := q.QueryRowContext(ctx, `SELECT
		(SELECT value FROM lab_meta WHERE key = 'schema'),
		(SELECT value FROM lab_meta WHERE key = 'schema_version')`).Scan(&name, &version)
	if err != nil {
		return fmt.Errorf("legacydb: %s is not a lab movie catalog (no lab_meta table): %w", db.path, err)
	}
	if name.String != catalogSchema {
		return fmt.Errorf("legacydb: %s is not a lab movie catalog (lab_meta schema is %q)", db.path, name.String)
	}
	if version.String != schemaVersion {
		return fmt.Errorf("legacydb: %s has catalog schema version %q; this lab knows version %s", db.path, version.String, schemaVersion)
	}
	return nil
}
