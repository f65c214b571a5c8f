package stream

import (
	"context"
	"log/slog"

	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/kafkaio/moviestable"
	"github.com/ratingslab/lab/services/model"
)

// movieTable is the movies table the processor joins ratings with: the
// compacted `movies` topic materialized in the processor's database (rows
// and positions in one transaction) and mirrored in memory for the join.
type movieTable struct {
	*moviestable.Table
	tailer *kafkaio.Tailer
}

func newMovieTable(ctx context.Context, k *kafkaio.Cluster, s *store, partitions int, codec *model.Codec, log *slog.Logger) (*movieTable, error) {
	movies, pos, err := s.loadMovies(ctx)
	if err != nil {
		return nil, err
	}
	t := &movieTable{Table: moviestable.New(movies, s.applyMovies, log).WithCodec(codec)}
	t.tailer = k.NewTailer(model.TopicMovies, partitions, pos, t.Apply)
	return t, nil
}
