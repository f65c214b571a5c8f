package registry_test

import (
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/lab/registry"
)

// The registry keeps subjects, versions, ids and levels across a restart
// (its SQLite file under --data), and a refused registration writes nothing.
func TestRegistryIsDurableAndRefusalsWriteNothing(t *testing.T) {
	dir := t.TempDir()
	start := func() (string, func()) {
		srv, closeStore, err := registry.NewServer(dir, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(srv)
		return ts.URL, func() { ts.Close(); closeStore() }
	}
	base, stop := start()
	call(t, base, "POST", "/subjects/durable/versions", register(schemaA))
	call(t, base, "PUT", "/config/durable", level("FULL"))
	if code, body := call(t, base, "POST", "/subjects/durable/versions", register(schemaAC)); code != 409 {
		t.Fatalf("incompatible under FULL: %d %s", code, body)
	}
	if code, body := call(t, base, "POST", "/subjects/durable/versions", register("{")); code != 422 {
		t.Fatalf("unparsable schema: %d %s", code, body)
	}
	stop()

	base, stop = start()
	defer stop()
	for path, want := range map[string]string{
		"/subjects/durable/versions": `[1]`,
		"/config/durable":            `{"compatibilityLevel":"FULL"}`,
		"/schemas/ids/1":             `{"schema":` + quote(schemaA) + `}`,
		"/subjects":                  `["durable"]`,
	} {
		code, body := call(t, base, "GET", path, nil)
		if code != 200 || !sameJSON(want, string(body)) {
			t.Errorf("after a restart, GET %s: %d %s; want %s", path, code, body, want)
		}
	}
}
