package legacydb

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/lib/serve"
	"github.com/ratingslab/lab/services/lib/servetest"
)

func adminWithSlowDB(t *testing.T, db *DB) string {
	srv := serve.New(serve.Options{Registry: prometheus.NewRegistry()})
	RegisterSlowDB(srv, db, slog.New(slog.DiscardHandler))
	_, admin := servetest.StartBoth(t, srv)
	return admin
}

func TestSlowDBSetsShowsAndHealsTheQueryDelay(t *testing.T) {
	db, _, err := Create(filepath.Join(t.TempDir(), "movies.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	admin := adminWithSlowDB(t, db)

	var shown map[string]string
	if code := servetest.CallJSON(t, "POST", admin+"/admin/slow-db", `{"delay":"250ms"}`, &shown); code != 200 || shown["delay"] != "250ms" {
		t.Fatalf("POST: %d %v, want 200 showing 250ms", code, shown)
	}
	if db.QueryDelay() != 250*time.Millisecond {
		t.Errorf("QueryDelay = %v after POST 250ms", db.QueryDelay())
	}
	if code := servetest.CallJSON(t, "GET", admin+"/admin/slow-db", "", &shown); code != 200 || shown["delay"] != "250ms" {
		t.Errorf("GET: %d %v", code, shown)
	}
	for _, bad := range []string{`{"delay":"soon"}`, `{"delay":"-1s"}`, `{"delay":"1h"}`, `{"wait":"1s"}`} {
		var e map[string]string
		if code := servetest.CallJSON(t, "POST", admin+"/admin/slow-db", bad, &e); code != 400 || e["error"] == "" {
			t.Errorf("POST %s: %d %v, want 400 with an error", bad, code, e)
		}
	}
	if db.QueryDelay() != 250*time.Millisecond {
		t.Errorf("a refused POST changed the delay to %v", db.QueryDelay())
	}
	if code := servetest.CallJSON(t, "DELETE", admin+"/admin/slow-db", "", &shown); code != 200 || shown["delay"] != "0s" || db.QueryDelay() != 0 {
		t.Errorf("DELETE: %d %v, delay now %v; want healed", code, shown, db.QueryDelay())
	}
}

func TestSlowDBWithoutACatalogSaysSo(t *testing.T) {
	admin := adminWithSlowDB(t, nil)
	for _, m := range []string{"GET", "POST", "DELETE"} {
		var e map[string]string
		if code := servetest.CallJSON(t, m, admin+"/admin/slow-db", `{"delay":"1s"}`, &e); code != 503 || e["error"] == "" {
			t.Errorf("%s with no catalog: %d %v, want 503 naming the cause", m, code, e)
		}
	}
}
