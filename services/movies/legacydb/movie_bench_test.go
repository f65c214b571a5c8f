package legacydb

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ratingslab/lab/services/lib/servetest"
)

// BenchmarkMovie is movies-rpc's work for every rating: one movie by id,
// from many goroutines at once as its handlers read it under load.
//
//	go test ./services/movies/legacydb -run '^$' -bench Movie -benchmem
func BenchmarkMovie(b *testing.B) {
	db, _, err := Create(filepath.Join(b.TempDir(), "movies.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	servetest.ReportCPU(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := int64(0)
		for pb.Next() {
			id = id%int64(seedSize) + 1
			if _, err := db.Movie(ctx, id); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
