package replay

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/requestids"
	"github.com/ratingslab/lab/services/model"
)

// A rebuild compares the state before with the state after at the same log
// position. When the log moved in between (the part had lag when it was
// stopped, or ratings kept arriving while it rebuilt), what the log added is
// folded into the state before with the parts' documented rules
// (docs/events.md) — an independent reading of the log, not the parts' code.

// countable decodes a ratings record and applies ratings-stream's checks: a
// valid event, keyed by its movie id, on the partition its key maps to, for
// a movie of the movies table. ok=false means it is dead-lettered.
func countable(ctx context.Context, codec *model.Codec, r Record, partitions int, known map[int64]bool) (model.RatingEvent, bool) {
	ev, err := codec.DecodeRating(ctx, r.Value)
	if err != nil || model.CheckRatingKey(r.Key, ev) != nil || model.RatingPartition(r.Key, partitions) != r.Partition {
		return ev, false
	}
	return ev, known[ev.MovieID]
}

// Delta is what the log added to one movie between two positions.
type Delta struct {
	Count, SumTenths int64
}

// foldRatings counts the ratings of [from[p], to[p]) into a copy of base.
// Request ids go through the record ratings-stream keeps (services/lib/requestids),
// started from the one it stored with the state before (ids[p]), with the
// same retention: a repeat is dropped, and a request id reused for another
// rating is not counted (it is dead-lettered).
func foldRatings(ctx context.Context, k *kafkaio.Cluster, codec *model.Codec, base map[int64]Aggregate, from, to map[int]int64, partitions int, ids map[int][]requestids.Entry, retention time.Duration, known map[int64]bool) (map[int64]Aggregate, map[int64]Delta, error) {
	out := maps.Clone(base)
	deltas := map[int64]Delta{}
	for _, p := range sortedKeys(to) {
		if to[p] <= from[p] {
			continue
		}
		record := requestids.NewPartition(retention, slices.Clone(ids[p]))
		err := scanRange(ctx, k, model.TopicRatings, p, max(from[p], 0), to[p], func(r Record) error {
			ev, ok := countable(ctx, codec, r, partitions, known)
			if !ok {
				return nil
			}
			v, _ := record.Count(requestids.Hash(ev.RequestID), requestids.Fingerprint(ev.MovieID, ev.Tenths, ev.UserID), r.Offset, r.Time.UnixMilli())
			if v != requestids.New {
				return nil // a repeat (counted once) or a conflict (dead-lettered)
			}
			a := out[ev.MovieID]
			a.MovieID, a.Partition = ev.MovieID, p
			a.Count++
			a.SumTenths += ev.Tenths
			out[ev.MovieID] = a
			d := deltas[ev.MovieID]
			d.Count++
			d.SumTenths += ev.Tenths
			deltas[ev.MovieID] = d
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
	}
	return out, deltas, nil
}

// foldView applies the movies and rated-movies records between two
// positions to a copy of a view, as webserver-stream's view does: movies
// upsert or delete a movie; a rated-movies update replaces the movie's
// aggregate only when it includes more of its partition (a higher source
// offset) or comes from another partition. changed lists the movies touched.
func foldView(ctx context.Context, k *kafkaio.Cluster, codec *model.Codec, base map[int64]ViewMovie, from, to map[string]map[int]int64) (map[int64]ViewMovie, map[int64]bool, error) {
	out := maps.Clone(base)
	changed := map[int64]bool{}
	for _, topic := range []string{model.TopicMovies, model.TopicRatedMovies} {
		for _, p := range sortedKeys(to[topic]) {
			start := from[topic][p]
			if start < 0 {
				start = 0
			}
			err := scanRange(ctx, k, topic, p, start, to[topic][p], func(r Record) error {
				id, err := model.ParseMovieKey(r.Key)
				if err != nil {
					return nil // skipped by the view too
				}
				m := out[id]
				m.MovieID = id
				switch topic {
				case model.TopicMovies:
					mv, ok, err := codec.DecodeMovie(ctx, r.Value)
					switch {
					case err != nil:
						return nil
					case !ok:
						m.Listed, m.Title, m.ReleaseYear = false, "", 0
					default:
						m.Listed, m.Title, m.ReleaseYear = true, mv.Title, mv.ReleaseYear
					}
				case model.TopicRatedMovies:
					ev, err := codec.DecodeRatedMovie(ctx, r.Value)
					if err != nil {
						return nil
					}
					if m.Rated && ev.SourceOffset <= m.SrcOffset && ev.SourcePartition == m.SrcPart {
						return nil // stale re-emit
					}
					m.Rated, m.Count, m.SumTenths, m.SrcPart, m.SrcOffset = true, ev.Count, ev.SumTenths, ev.SourcePartition, ev.SourceOffset
				}
				out[id] = m
				changed[id] = true
				return nil
			})
			if err != nil {
				return nil, nil, err
			}
		}
	}
	return out, changed, nil
}

// aheadOf reports whether position a has reached b on every partition of b.
func aheadOf(a, b map[int]int64) bool {
	for p, off := range b {
		if a[p] < off {
			return false
		}
	}
	return true
}

func describeOffsets(m map[int]int64) string {
	s := ""
	for _, p := range sortedKeys(m) {
		if s != "" {
			s += " "
		}
		s += fmt.Sprintf("%d:%d", p, m[p])
	}
	return s
}
