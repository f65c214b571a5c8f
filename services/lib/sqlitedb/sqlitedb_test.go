package sqlitedb_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ratingslab/lab/services/lib/sqlitedb"
)

// A store whose pages were overwritten fails to open, naming the file, and
// the error says no retry fixes it; a healthy one opens.
func TestOpenRefusesADamagedStoreNamingIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := sqlitedb.Open(path, sqlitedb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlitedb.Exec(db, `CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT);`); err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		if _, err := db.Exec(`INSERT INTO t (k, v) VALUES (?, ?)`, i, strings.Repeat("x", 100)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if db, err := sqlitedb.Open(path, sqlitedb.Options{}); err != nil {
		t.Fatalf("a healthy store: %v", err)
	} else {
		db.Close()
	}

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 4096; i < len(b); i++ {
		b[i] = byte(i * 7)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = sqlitedb.Open(path, sqlitedb.Options{})
	var ce *sqlitedb.CorruptError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("opening a damaged store: %v, want a CorruptError naming %s", err, path)
	}
	if !sqlitedb.IsCorrupt(err) || !ce.Permanent() {
		t.Error("a damaged store should be corrupt and permanent")
	}

	if err := os.WriteFile(path, []byte("this is not a database at all, just text"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlitedb.Open(path, sqlitedb.Options{}); !sqlitedb.IsCorrupt(err) || !strings.Contains(err.Error(), path) {
		t.Errorf("opening a text file as a store: %v, want corrupt naming the file", err)
	}
}
