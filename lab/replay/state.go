package replay

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/ratingslab/lab/services/lib/requestids"
	ratingsstream "github.com/ratingslab/lab/services/ratings/stream"
	webstream "github.com/ratingslab/lab/services/webserver/stream"
)

// Database files as the parts create them in their data directories.
const (
	streamDBFile = ratingsstream.DBFile
	viewDBFile   = webstream.DBFile
)

// Aggregate is one movie's count and sum as ratings-stream holds it.
type Aggregate = ratingsstream.Aggregate

// StreamState is ratings-stream's committed state, merged over its
// instances' databases.
type StreamState struct {
	// Movies: per movie, the aggregate that includes the most of its
	// partition (a replica may keep a stale one after a rebalance).
	Movies map[int64]Aggregate
	// Offsets: next offset of `ratings` per partition, the furthest any
	// instance reached.
	Offsets map[int]int64
	// Known: the movie ids of the processors' movies tables.
	Known map[int64]bool
	// RequestIDs: per partition, the request ids counted (kept by the
	// instance that reached Offsets), and the retention they were kept with.
	RequestIDs map[int][]requestids.Entry
	Retention  time.Duration
}

// readStreamState reads the databases at paths, each in one read
// transaction (missing files are skipped; none at all is an empty state).
func readStreamState(ctx context.Context, paths []string) (StreamState, error) {
	st := StreamState{Movies: map[int64]Aggregate{}, Offsets: map[int]int64{}, Known: map[int64]bool{},
		RequestIDs: map[int][]requestids.Entry{}, Retention: requestids.DefaultRetention}
	for _, path := range paths {
		err := readStream(ctx, path, func(r *ratingsstream.Reader) error {
			aggs, err := r.Aggregates(ctx)
			if err != nil {
				return err
			}
			for _, a := range aggs {
				if have, ok := st.Movies[a.MovieID]; !ok || a.SourceOffset > have.SourceOffset {
					st.Movies[a.MovieID] = a
				}
			}
			offsets, err := r.Positions(ctx)
			if err != nil {
				return err
			}
			for p, next := range offsets {
				if _, ok := st.Offsets[p]; ok && next <= st.Offsets[p] {
					continue
				}
				// This instance reached furthest on p: its record of p goes
				// with the offset.
				st.Offsets[p] = next
				if st.RequestIDs[p], err = r.RequestIDs(ctx, p); err != nil {
					return err
				}
				if st.Retention, err = r.RequestIDRetention(ctx); err != nil {
					return err
				}
			}
			ids, err := r.MovieIDs(ctx)
			for _, id := range ids {
				st.Known[id] = true
			}
			return err
		})
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return st, err
		}
	}
	return st, nil
}

// readStream runs fn on one ratings-stream database, read-only.
func readStream(ctx context.Context, path string, fn func(r *ratingsstream.Reader) error) error {
	r, err := ratingsstream.OpenReader(ctx, path)
	if err != nil {
		return err
	}
	defer r.Close()
	return fn(r)
}

// readStreamOffsets reads only the next offsets of `ratings` (the furthest
// any instance reached): cheap enough to poll while a rebuild runs.
func readStreamOffsets(ctx context.Context, paths []string) (map[int]int64, error) {
	out := map[int]int64{}
	for _, path := range paths {
		err := readStream(ctx, path, func(r *ratingsstream.Reader) error {
			offsets, err := r.Positions(ctx)
			for p, next := range offsets {
				out[p] = max(out[p], next)
			}
			return err
		})
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return out, err
		}
	}
	return out, nil
}

// ViewMovie is one movie as webserver-stream's view serves it, with the
// position of the rated-movies update it holds.
type ViewMovie struct {
	MovieID     int64  `json:"movie_id"`
	Title       string `json:"title"`
	ReleaseYear int    `json:"release_year"`
	Listed      bool   `json:"listed"` // in the movies table (GET /api/movies lists it)
	Count       int64  `json:"count"`
	SumTenths   int64  `json:"sum_tenths"`
	Rated       bool   `json:"rated"` // has a rated-movies row
	SrcPart     int    `json:"source_partition"`
	SrcOffset   int64  `json:"source_offset"`
}

// ViewState is webserver-stream's view and the positions it reached.
type ViewState struct {
	Movies    map[int64]ViewMovie
	Positions map[string]map[int]int64 // topic → partition → next offset
}

// readViewState reads the view at path in one read transaction.
func readViewState(ctx context.Context, path string) (ViewState, error) {
	st := ViewState{Movies: map[int64]ViewMovie{}, Positions: map[string]map[int]int64{}}
	r, err := webstream.OpenReader(ctx, path)
	if err != nil {
		return st, err
	}
	defer r.Close()
	movies, err := r.Movies(ctx)
	if err != nil {
		return st, err
	}
	for _, m := range movies {
		st.Movies[m.ID] = ViewMovie{MovieID: m.ID, Title: m.Title, ReleaseYear: m.ReleaseYear, Listed: true}
	}
	rated, err := r.Rated(ctx)
	if err != nil {
		return st, err
	}
	for _, rm := range rated {
		m := st.Movies[rm.MovieID]
		m.MovieID, m.Count, m.SumTenths, m.Rated, m.SrcPart, m.SrcOffset = rm.MovieID, rm.Count, rm.SumTenths, true, rm.SourcePartition, rm.SourceOffset
		st.Movies[rm.MovieID] = m
	}
	pos, err := r.Positions(ctx)
	if err != nil {
		return st, err
	}
	st.Positions = pos
	return st, nil
}

// ChecksumRow is one movie's line of a checksum table.
type ChecksumRow struct {
	MovieID int64 `json:"movie_id"`
	// What the checksum covers, before and after, for people.
	Before string `json:"before"`
	After  string `json:"after"`
	// Delta is what the log added between the two positions ("" if nothing).
	Delta          string `json:"delta,omitempty"`
	BeforeChecksum string `json:"before_checksum"`
	// ExpectedChecksum is the checksum of the state before with the delta
	// applied; it equals BeforeChecksum when the log did not move.
	ExpectedChecksum string `json:"expected_checksum"`
	AfterChecksum    string `json:"after_checksum"`
	Match            bool   `json:"match"`
}

// ChecksumTable is the proof a rebuild prints: per movie, a checksum of the
// state before (plus what the log added meanwhile) and after, and one over
// the whole state.
type ChecksumTable struct {
	Rows             []ChecksumRow `json:"movies"`
	Movies           int           `json:"movie_count"`
	Mismatches       int           `json:"mismatches"`
	ExpectedChecksum string        `json:"expected_checksum"`
	AfterChecksum    string        `json:"after_checksum"`
}

// OK reports whether every movie matches.
func (t ChecksumTable) OK() bool { return t.Mismatches == 0 }

// rowText is what a movie's checksum covers, as readable text.
type rowText func(id int64) (text string, present bool)

// checksumTable compares before+delta (expected) with after, movie by movie.
func checksumTable(ids []int64, before, expected, after rowText, delta func(id int64) string) ChecksumTable {
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var t ChecksumTable
	whole := [2]uint32{}
	for _, id := range ids {
		b, _ := before(id)
		e, _ := expected(id)
		a, _ := after(id)
		row := ChecksumRow{MovieID: id, Before: b, After: a, Delta: delta(id),
			BeforeChecksum: sum32(id, b), ExpectedChecksum: sum32(id, e), AfterChecksum: sum32(id, a)}
		row.Match = row.ExpectedChecksum == row.AfterChecksum
		if !row.Match {
			t.Mismatches++
		}
		whole[0] = crc32.Update(whole[0], crc32.IEEETable, []byte(row.ExpectedChecksum))
		whole[1] = crc32.Update(whole[1], crc32.IEEETable, []byte(row.AfterChecksum))
		t.Rows = append(t.Rows, row)
	}
	t.Movies = len(ids)
	t.ExpectedChecksum = fmt.Sprintf("%08x", whole[0])
	t.AfterChecksum = fmt.Sprintf("%08x", whole[1])
	return t
}

// sum32 is a movie's checksum: CRC-32 (IEEE) of "id|text".
func sum32(id int64, text string) string {
	return fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(strconv.FormatInt(id, 10)+"|"+text)))
}
