package breaker_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/lib/breaker"
)

// BenchmarkBreakerCall measures what the wrapper costs per call: a no-op call
// made directly, through Do with the breaker on (timeout context, gobreaker,
// metrics), and with breakers off; then the same over real loopback HTTP,
// where the overhead should vanish in the noise of the round trip.
//
//	go test ./services/lib/breaker -run XXX -bench BreakerCall -benchmem
func BenchmarkBreakerCall(b *testing.B) {
	noop := func(context.Context) error { return nil }
	newDep := func(b *testing.B, enabled bool) *breaker.Dependency {
		s := breaker.DefaultSettings()
		s.Enabled = enabled
		d, err := breaker.New("bench", s, breaker.NewMetrics(prometheus.NewRegistry()), nil)
		if err != nil {
			b.Fatal(err)
		}
		return d
	}
	ctx := context.Background()

	b.Run("noop/direct", func(b *testing.B) {
		for b.Loop() {
			_ = noop(ctx)
		}
	})
	b.Run("noop/breaker", func(b *testing.B) {
		d := newDep(b, true)
		for b.Loop() {
			_ = d.Do(ctx, breaker.Read, noop)
		}
	})
	b.Run("noop/breakers-off", func(b *testing.B) {
		d := newDep(b, false)
		for b.Loop() {
			_ = d.Do(ctx, breaker.Read, noop)
		}
	})

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"movie_id":1}`))
	}))
	defer srv.Close()
	client := breaker.NewHTTPClient(breaker.ClientOptions{})
	get := func(ctx context.Context) error {
		_, err := breaker.CallJSON(ctx, client, "GET", srv.URL+"/movies/1", nil, nil)
		return err
	}
	b.Run("http/direct", func(b *testing.B) {
		for b.Loop() {
			if err := get(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("http/breaker", func(b *testing.B) {
		d := newDep(b, true)
		for b.Loop() {
			if err := d.Do(ctx, breaker.Read, get); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("noop/breaker-parallel", func(b *testing.B) {
		d := newDep(b, true)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = d.Do(ctx, breaker.Read, noop)
			}
		})
	})
}
