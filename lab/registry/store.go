package registry

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/hamba/avro/v2"

	"github.com/ratingslab/lab/services/lib/sqlitedb"
)

// store keeps the registry durably in one SQLite file: schemas by id
// (content-addressed: the same text has one id in every subject), subject
// versions, and compatibility levels ("" is the global one). Every change
// is one transaction, so a kill leaves either all of it or none.
type store struct {
	db *sql.DB
	mu sync.Mutex // serializes check-then-write (registration)
}

const storeSchema = `
CREATE TABLE IF NOT EXISTS schemas (
	id   INTEGER PRIMARY KEY AUTOINCREMENT,
	text TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS versions (
	subject   TEXT NOT NULL,
	version   INTEGER NOT NULL,
	schema_id INTEGER NOT NULL REFERENCES schemas(id),
	deleted   INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (subject, version)
);
CREATE TABLE IF NOT EXISTS config (
	subject TEXT PRIMARY KEY,
	level   TEXT NOT NULL
);`

func openStore(dir string) (*store, error) {
	if dir == "" {
		return nil, errors.New("--data: directory is empty")
	}
	path, err := sqlitedb.File(dir, "registry.db")
	if err != nil {
		return nil, err
	}
	db, err := sqlitedb.Open(path, sqlitedb.Options{Pragmas: []string{"foreign_keys(ON)"}})
	if err != nil {
		return nil, fmt.Errorf("registry store %s: %w", path, err)
	}
	if err := sqlitedb.Exec(db, storeSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("registry store %s: %w", path, err)
	}
	return &store{db: db}, nil
}

func (s *store) Close() error { return s.db.Close() }

// Version is one registered version of a subject.
type Version struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
	ID      int    `json:"id"`
	Schema  string `json:"schema"`
}

// normalize compacts a schema's JSON text, so that whitespace does not make
// a new schema (Confluent and Apicurio both ignore it).
func normalize(text string) string {
	var b bytes.Buffer
	if json.Compact(&b, []byte(text)) != nil {
		return text
	}
	return b.String()
}

func (s *store) subjects(ctx context.Context, deleted bool) ([]string, error) {
	q := `SELECT DISTINCT subject FROM versions WHERE deleted = 0 ORDER BY subject`
	if deleted {
		q = `SELECT DISTINCT subject FROM versions ORDER BY subject`
	}
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var sub string
		if err := rows.Scan(&sub); err != nil {
			return nil, err
		}
		out = append(out, sub)
	}
	return out, rows.Err()
}

// versions lists a subject's live versions, oldest first (nil: no such subject).
func (s *store) versions(ctx context.Context, subject string) ([]Version, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT v.version, v.schema_id, s.text FROM versions v JOIN schemas s ON s.id = v.schema_id
		WHERE v.subject = ? AND v.deleted = 0 ORDER BY v.version`, subject)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Version
	for rows.Next() {
		v := Version{Subject: subject}
		if err := rows.Scan(&v.Version, &v.ID, &v.Schema); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (s *store) schemaByID(ctx context.Context, id int) (string, bool, error) {
	var text string
	err := s.db.QueryRowContext(ctx, `SELECT text FROM schemas WHERE id = ?`, id).Scan(&text)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return text, err == nil, err
}

// usages lists the live subject versions that use schema id.
func (s *store) usages(ctx context.Context, id int) ([]Version, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT subject, version FROM versions WHERE schema_id = ? AND deleted = 0 ORDER BY subject, version`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Version{}
	for rows.Next() {
		v := Version{ID: id}
		if err := rows.Scan(&v.Subject, &v.Version); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// level is the subject's own level ("" for the global one); ok=false when none is set.
func (s *store) level(ctx context.Context, subject string) (Level, bool, error) {
	var l string
	err := s.db.QueryRowContext(ctx, `SELECT level FROM config WHERE subject = ?`, subject).Scan(&l)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return Level(l), err == nil, err
}

// effectiveLevel is the subject's level, else the global one, else the default.
func (s *store) effectiveLevel(ctx context.Context, subject string) (Level, error) {
	for _, sub := range []string{subject, ""} {
		l, ok, err := s.level(ctx, sub)
		if err != nil || ok {
			return l, err
		}
	}
	return DefaultLevel, nil
}

func (s *store) setLevel(ctx context.Context, subject string, l Level) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO config (subject, level) VALUES (?, ?) ON CONFLICT(subject) DO UPDATE SET level = excluded.level`, subject, string(l))
	return err
}

func (s *store) deleteLevel(ctx context.Context, subject string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM config WHERE subject = ?`, subject)
	return err
}

// errIncompatible carries the compatibility check's messages.
type errIncompatible struct{ msgs []string }

func (e *errIncompatible) Error() string {
	return "Schema being registered is incompatible with an earlier schema for subject: " + fmt.Sprint(e.msgs)
}

// register adds text to subject unless the subject already holds it, after
// the compatibility check, all in one transaction. created says whether a
// new version was written.
func (s *store) register(ctx context.Context, subject, text string, candidate avro.Schema) (v Version, created bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	text = normalize(text)
	live, err := s.versions(ctx, subject)
	if err != nil {
		return v, false, err
	}
	for _, old := range live {
		if old.Schema == text {
			return old, false, nil
		}
	}
	level, err := s.effectiveLevel(ctx, subject)
	if err != nil {
		return v, false, err
	}
	earlier := make([]avro.Schema, 0, len(live))
	for _, old := range live {
		sch, err := parse(old.Schema)
		if err != nil {
			return v, false, fmt.Errorf("stored schema %d of %s does not parse: %w", old.ID, subject, err)
		}
		earlier = append(earlier, sch)
	}
	if msgs := check(level, candidate, earlier); len(msgs) > 0 {
		return v, false, &errIncompatible{msgs: msgs}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return v, false, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO schemas (text) VALUES (?) ON CONFLICT(text) DO NOTHING`, text); err != nil {
		return v, false, err
	}
	v = Version{Subject: subject, Schema: text}
	if err := tx.QueryRowContext(ctx, `SELECT id FROM schemas WHERE text = ?`, text).Scan(&v.ID); err != nil {
		return v, false, err
	}
	// Version numbers keep counting past soft-deleted versions, as Confluent's do.
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM versions WHERE subject = ?`, subject).Scan(&v.Version); err != nil {
		return v, false, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO versions (subject, version, schema_id) VALUES (?, ?, ?)`, subject, v.Version, v.ID); err != nil {
		return v, false, err
	}
	return v, true, tx.Commit()
}

// deleteSubject soft-deletes (or, when permanent, removes) a subject's
// versions and returns their numbers. A permanent delete needs a soft one
// first, as in Confluent's API.
func (s *store) deleteSubject(ctx context.Context, subject string, permanent bool) ([]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT version, deleted FROM versions WHERE subject = ? ORDER BY version`, subject)
	if err != nil {
		return nil, err
	}
	var all, live []int
	for rows.Next() {
		var ver, del int
		if err := rows.Scan(&ver, &del); err != nil {
			rows.Close()
			return nil, err
		}
		all = append(all, ver)
		if del == 0 {
			live = append(live, ver)
		}
	}
	rows.Close()
	switch {
	case len(all) == 0:
		return nil, errSubjectNotFound
	case permanent && len(live) > 0:
		return nil, errNotSoftDeleted
	case !permanent && len(live) == 0:
		return nil, errSubjectSoftDeleted
	case permanent:
		if _, err := tx.ExecContext(ctx, `DELETE FROM versions WHERE subject = ?`, subject); err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM config WHERE subject = ?`, subject); err != nil {
			return nil, err
		}
		return all, tx.Commit()
	}
	if _, err := tx.ExecContext(ctx, `UPDATE versions SET deleted = 1 WHERE subject = ?`, subject); err != nil {
		return nil, err
	}
	return live, tx.Commit()
}

// deleteVersion soft-deletes one live version (or, when permanent,
// removes a soft-deleted one).
func (s *store) deleteVersion(ctx context.Context, subject string, version int, permanent bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var deleted int
	err := s.db.QueryRowContext(ctx, `SELECT deleted FROM versions WHERE subject = ? AND version = ?`, subject, version).Scan(&deleted)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return errVersionNotFound
	case err != nil:
		return err
	case permanent && deleted == 0:
		return errNotSoftDeleted
	case !permanent && deleted == 1:
		return errVersionNotFound
	case permanent:
		_, err = s.db.ExecContext(ctx, `DELETE FROM versions WHERE subject = ? AND version = ?`, subject, version)
	default:
		_, err = s.db.ExecContext(ctx, `UPDATE versions SET deleted = 1 WHERE subject = ? AND version = ?`, subject, version)
	}
	return err
}

var (
	errVersionNotFound    = errors.New("version not found")
	errSubjectNotFound    = errors.New("subject not found")
	errNotSoftDeleted     = errors.New("subject was not soft-deleted first")
	errSubjectSoftDeleted = errors.New("subject was soft-deleted")
)
