package rpc_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
	"github.com/ratingslab/lab/services/ratings/rpc"
)

// BenchmarkStoreApply applies distinct ratings to the store from many
// goroutines at once, as ratings-rpc's handlers do under load (each Apply
// returns only after its rating is committed):
//
//	go test ./services/ratings/rpc -run '^$' -bench StoreApply -benchtime 20000x
func BenchmarkStoreApply(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			store, err := rpc.OpenStore(b.TempDir(), rpc.SyncNormal)
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			var seq atomic.Int64
			b.SetParallelism(writers) // × GOMAXPROCS goroutines
			servetest.ReportCPU(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := seq.Add(1)
					r := model.Rating{RequestID: fmt.Sprintf("bench-%d", i), MovieID: 1 + i%180, Tenths: 75, UserID: i % 1000}
					if _, err := store.Apply(context.Background(), r, model.Movie{ID: r.MovieID, Title: "t", ReleaseYear: 2000}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ratings/s")
			if st := store.Stats(); st.Batches > 0 {
				b.ReportMetric(float64(st.Applied)/float64(st.Batches), "ratings/commit")
			}
		})
	}
}

// BenchmarkFirstUseOfANewID is the repeat check every POST makes before it
// asks movies-rpc, for the usual case: a request id never applied, in a
// store holding 20,000 others.
//
//	go test ./services/ratings/rpc -run '^$' -bench FirstUse -benchmem
func BenchmarkFirstUseOfANewID(b *testing.B) {
	store, err := rpc.OpenStore(b.TempDir(), rpc.SyncNormal)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	for i := range 20_000 {
		r := model.Rating{RequestID: fmt.Sprintf("old-%d", i), MovieID: 1 + int64(i%180), Tenths: 75}
		if _, err := store.Apply(ctx, r, model.Movie{ID: r.MovieID, Title: "t", ReleaseYear: 2000}); err != nil {
			b.Fatal(err)
		}
	}
	servetest.ReportCPU(b)
	b.ResetTimer()
	for i := range b.N {
		if _, _, found, err := store.FirstUse(ctx, fmt.Sprintf("new-%d", i)); err != nil || found {
			b.Fatalf("FirstUse of a new id: found %v, %v", found, err)
		}
	}
}
