package parts

import (
	"strconv"

	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/services/movies/connect"
	ratingsstream "github.com/ratingslab/lab/services/ratings/stream"
	webserverstream "github.com/ratingslab/lab/services/webserver/stream"
)

// The log variant: movies-connect streams the legacy catalog into `movies`;
// webserver-stream produces `ratings` and reads its own view; ratings-stream
// (1..MaxRatingsStreamReplicas instances in one consumer group) turns
// ratings into `rated-movies`. Every Kafka client reaches each broker through
// its own edge proxy for that broker (BrokerEdges, KafkaClientArgs).

func init() {
	Register(&Part{
		Name:      "movies-connect",
		Variant:   VariantStream,
		Summary:   "streams the legacy movie catalog into the compacted movies topic (JDBC-source style polling)",
		Start:     20,
		NewRunner: func() Runner { return &connect.Runner{} },
		Args: func(env Env, _ int) []string {
			args := []string{
				"--listen", env.Ports.MoviesConnect(),
				"--data", env.Dir.Data("movies-connect"),
				"--legacy-db", env.Dir.LegacyDB(),
			}
			args = append(args, FormatArgs(env, "movies-connect")...)
			return append(args, KafkaClientArgs(env.Ports, BrokerEdges(env.Options, "movies-connect")...)...)
		},
		HTTP: func(p layout.Ports, _ int) string { return p.MoviesConnect() },
	})
	Register(&Part{
		Name:      "ratings-stream",
		Variant:   VariantStream,
		Summary:   "stream processor: ratings joined with movies, count+sum per movie, emits rated-movies",
		Start:     21,
		NewRunner: func() Runner { return &ratingsstream.Runner{} },
		Args: func(env Env, i int) []string {
			name := InstanceName("ratings-stream", i)
			delivery := env.Options.Delivery
			if delivery == "" {
				delivery = string(ratingsstream.EffectivelyOnce)
			}
			args := []string{
				"--listen", env.Ports.RatingsStream(i),
				"--data", env.Dir.Data(name),
				"--delivery", delivery,
			}
			args = append(args, FormatArgs(env, name)...)
			if env.Options.Restore != "" {
				args = append(args, "--restore", env.Options.Restore)
			}
			if n := env.Options.StandbyReplicas; n > 0 {
				args = append(args, "--standby-replicas", strconv.Itoa(n))
			}
			if delivery == string(ratingsstream.Transactional) {
				// Stable per instance: a restarted instance fences its
				// previous incarnation and aborts what it left open.
				args = append(args, "--transactional-id", name)
			}
			return append(args, KafkaClientArgs(env.Ports, BrokerEdges(env.Options, name)...)...)
		},
		HTTP:        func(p layout.Ports, i int) string { return p.RatingsStream(i) },
		MaxReplicas: MaxRatingsStreamReplicas,
	})
	Register(&Part{
		Name:      "webserver-stream",
		Variant:   VariantStream,
		Summary:   "public API and page; produces ratings (acks=all) and reads its own view of the log",
		Start:     22,
		NewRunner: func() Runner { return &webserverstream.Runner{} },
		Args: func(env Env, _ int) []string {
			args := []string{
				"--listen", env.Ports.WebserverStream(),
				"--data", env.Dir.Data("webserver-stream"),
			}
			args = append(args, FormatArgs(env, "webserver-stream")...)
			return append(args, KafkaClientArgs(env.Ports, BrokerEdges(env.Options, "webserver-stream")...)...)
		},
		HTTP: func(p layout.Ports, _ int) string { return p.WebserverStream() },
	})
}
