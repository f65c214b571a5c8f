package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/parts"
	ratingsrpc "github.com/ratingslab/lab/services/ratings/rpc"
	ratingsstream "github.com/ratingslab/lab/services/ratings/stream"
)

// Variant names (parts.VariantRPC, parts.VariantStream).
const (
	VariantRPC    = string(parts.VariantRPC)
	VariantStream = string(parts.VariantStream)
)

// maxStreamReplicas: layout gives ratings-stream replicas 4 ports.
const maxStreamReplicas = 4

// RPCStorePath is ratings-rpc's SQLite file in a lab's state directory.
func RPCStorePath(dir layout.Dir) string {
	return filepath.Join(dir.Data("ratings-rpc"), ratingsrpc.DBFile)
}

// StreamStorePaths are the SQLite files of the ratings-stream replicas
// that exist in a lab's state directory.
func StreamStorePaths(dir layout.Dir) []string {
	var out []string
	for i := range maxStreamReplicas {
		p := filepath.Join(dir.Data(parts.InstanceName("ratings-stream", i)), ratingsstream.DBFile)
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// ReadStore reads a variant's own store in a lab's state directory.
func ReadStore(ctx context.Context, dir layout.Dir, variant string) Snapshot {
	s := Snapshot{Variant: variant, Source: SourceStore, At: time.Now().UTC()}
	var err error
	switch variant {
	case VariantRPC:
		s.Movies, err = ReadRPCStore(ctx, RPCStorePath(dir))
	case VariantStream:
		paths := StreamStorePaths(dir)
		if len(paths) == 0 {
			err = fmt.Errorf("no ratings-stream store under %s", dir.Path("data"))
			break
		}
		s.Movies, err = ReadStreamStores(ctx, paths)
	default:
		err = fmt.Errorf("variant %q has no store the audit knows (want %s or %s)", variant, VariantRPC, VariantStream)
	}
	if err != nil {
		s.Error = err.Error()
		s.Movies = nil
	}
	return s
}

// ReadRPCStore reads count and sum per movie from ratings-rpc's SQLite.
func ReadRPCStore(ctx context.Context, path string) ([]MovieState, error) {
	r, err := ratingsrpc.OpenReader(ctx, path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	totals, err := r.Totals(ctx)
	if err != nil {
		return nil, err
	}
	var out []MovieState
	for _, t := range totals {
		out = append(out, MovieState{MovieID: t.MovieID, Count: t.Count, SumTenths: t.SumTenths})
	}
	return out, nil
}

// AppliedRequest is a rating ratings-rpc recorded as applied.
type AppliedRequest struct {
	MovieID   int64
	SumTenths int64
}

// ReadRPCApplied reads ratings-rpc's idempotency record: every request id it
// applied, which lets the audit name lost and phantom requests exactly.
func ReadRPCApplied(ctx context.Context, path string) (map[string]AppliedRequest, error) {
	r, err := ratingsrpc.OpenReader(ctx, path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	applied, err := r.AppliedRequests(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]AppliedRequest, len(applied))
	for id, a := range applied {
		out[id] = AppliedRequest{MovieID: a.MovieID, SumTenths: a.RatingTenths}
	}
	return out, nil
}

// ReadStreamStores reads count and sum per movie from the ratings-stream
// replicas' SQLite files. After a rebalance a replica may keep a stale
// aggregate of a movie it no longer owns; each aggregate records the prefix
// of its partition it includes (source_offset), so for every movie the one
// that includes the most wins.
func ReadStreamStores(ctx context.Context, paths []string) ([]MovieState, error) {
	byID := map[int64]ratingsstream.Aggregate{}
	for _, path := range paths {
		aggs, err := readStreamAggregates(ctx, path)
		if err != nil {
			return nil, err
		}
		for _, a := range aggs {
			if have, ok := byID[a.MovieID]; !ok || a.SourceOffset > have.SourceOffset {
				byID[a.MovieID] = a
			}
		}
	}
	out := make([]MovieState, 0, len(byID))
	for _, a := range byID {
		out = append(out, MovieState{MovieID: a.MovieID, Count: a.Count, SumTenths: a.SumTenths})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].MovieID < out[j].MovieID })
	return out, nil
}

func readStreamAggregates(ctx context.Context, path string) ([]ratingsstream.Aggregate, error) {
	r, err := ratingsstream.OpenReader(ctx, path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Aggregates(ctx)
}

// ReadAPI reads every movie's aggregate from a variant's public API
// (GET {baseURL}/api/movies, paged).
func ReadAPI(ctx context.Context, client *http.Client, variant, baseURL string) Snapshot {
	s := Snapshot{Variant: variant, Source: SourceAPI, At: time.Now().UTC()}
	err := EachMovie(ctx, client, baseURL, func(m MovieState) {
		if m.Count != 0 || m.SumTenths != 0 {
			s.Movies = append(s.Movies, m)
		}
	})
	if err != nil {
		s.Error = err.Error()
		s.Movies = nil
	}
	return s
}

// moviesPage is the part of webserver.MoviesPage the audit reads.
type moviesPage struct {
	Movies []MovieState `json:"movies"`
	Total  int          `json:"total"`
}

// maxPages bounds the paging loop (500 movies a page).
const maxPages = 1000

// EachMovie pages through GET {baseURL}/api/movies and calls fn for every
// movie in the order served (by id).
func EachMovie(ctx context.Context, client *http.Client, baseURL string, fn func(MovieState)) error {
	if client == nil {
		client = http.DefaultClient
	}
	const limit = 500
	base := strings.TrimRight(baseURL, "/")
	offset := 0
	for range maxPages {
		u := fmt.Sprintf("%s/api/movies?offset=%d&limit=%d", base, offset, limit)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("GET %s: %w", u, err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("GET %s: %w", u, err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(body[:min(len(body), 200)])))
		}
		var page moviesPage
		if err := json.Unmarshal(body, &page); err != nil {
			return fmt.Errorf("GET %s: %w", u, err)
		}
		for _, m := range page.Movies {
			fn(m)
		}
		offset += len(page.Movies)
		if len(page.Movies) == 0 || offset >= page.Total {
			return nil
		}
	}
	return fmt.Errorf("GET %s/api/movies: more than %d pages", base, maxPages)
}
