package eventformat_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/lab/registry"
	"github.com/ratingslab/lab/services/lib/eventformat"
	"github.com/ratingslab/lab/services/model"
)

func embedded(t *testing.T) string {
	t.Helper()
	srv, closeStore, err := registry.NewServer(t.TempDir(), prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { ts.Close(); closeStore() })
	return ts.URL
}

// The client tells the codec apart: a refusal (409, with the registry's
// message), an id the registry does not know (a bad record), and a
// registry it cannot reach (retry).
func TestClientClassifiesRegistryAnswers(t *testing.T) {
	ctx := context.Background()
	base := embedded(t)
	cl, err := eventformat.NewClient(base, eventformat.NewMetrics(nil))
	if err != nil {
		t.Fatal(err)
	}
	v1, _ := model.SchemaText(model.TopicRatings, model.ContractV1)
	id, err := cl.Register(ctx, "ratings-value", v1)
	if err != nil || id <= 0 {
		t.Fatalf("register v1: %d %v", id, err)
	}
	rename, _ := model.SchemaText(model.TopicRatings, model.ContractRenameField)
	_, err = cl.Register(ctx, "ratings-value", rename)
	var refused *eventformat.RefusedError
	if !errors.As(err, &refused) || !refused.Incompatible() || !strings.Contains(err.Error(), "score") {
		t.Fatalf("an incompatible schema under BACKWARD: %v; want a 409 naming the field", err)
	}
	if _, err := cl.SchemaByID(ctx, 4242); !errors.Is(err, model.ErrSchemaNotFound) {
		t.Fatalf("an unknown id: %v; want ErrSchemaNotFound", err)
	}
	text, err := cl.SchemaByID(ctx, id)
	if err != nil || text == "" {
		t.Fatalf("schema %d: %q %v", id, text, err)
	}

	down, _ := eventformat.NewClient("http://127.0.0.1:1", eventformat.NewMetrics(nil))
	_, err = down.SchemaByID(ctx, 1)
	if err == nil || errors.As(err, &refused) || errors.Is(err, model.ErrSchemaNotFound) {
		t.Fatalf("an unreachable registry: %v; want a transient error", err)
	}
}

// Bad flags are named.
func TestConfigRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		cfg  eventformat.Config
		want string
	}{
		{eventformat.Config{Format: "xml"}, `--format "xml"`},
		{eventformat.Config{Format: "avro"}, "--registry URL is required"},
		{eventformat.Config{Format: "avro", Registry: "127.0.0.1:7706"}, "want http(s)://host:port"},
	} {
		if _, err := tc.cfg.Codec(nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
}

// Await waits out a registry outage (bounded by its context) and passes
// any other error on at once.
func TestAwaitRetriesOnlyWhileTheRegistryIsAway(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	calls := 0
	err := eventformat.Await(context.Background(), log, "test", func() error {
		calls++
		if calls < 3 {
			return model.ErrRegistryUnavailable
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("Await: %v after %d calls; want success on the third", err, calls)
	}
	bad := errors.New("bad record")
	if err := eventformat.Await(context.Background(), log, "test", func() error { return bad }); err != bad {
		t.Fatalf("Await passed %v, want the record's own error at once", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if err := eventformat.Await(ctx, log, "test", func() error { return model.ErrRegistryUnavailable }); !errors.Is(err, model.ErrRegistryUnavailable) {
		t.Fatalf("Await after its context ended: %v", err)
	}
}
