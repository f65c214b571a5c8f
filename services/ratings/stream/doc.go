// Package stream is ratings-stream, the log variant's ratings service: a
// stream processor that consumes `ratings`, joins each rating with a movies
// table it materializes from the compacted `movies` topic, keeps the count
// and sum (exact, in tenths) per movie, and writes the updated RatedMovie to
// the compacted `rated-movies` topic. Formats: docs/events.md.
//
// # Effectively-once (the default)
//
// kafka-go's group Reader cannot seek, so partition assignment and
// consumption are separate: kafka.ConsumerGroup assigns partitions, and for
// each generation the processor reads its partitions with partition readers
// starting at the offsets stored in its own SQLite database. Per batch (up to
// --max-batch records, aggregated in memory), one transaction writes the new
// aggregates and the next offset of every partition in the batch. The
// database is therefore the truth about what is counted: after a crash the
// processor resumes from the stored offsets with the stored state, and no
// rating is counted twice or lost.
//
// After the commit, rated-movies records are produced (acks=all) and then
// the offsets are also committed to the consumer group — only so that tools
// (`kafka-consumer-groups`, `lab replay`, lag dashboards) see the group's
// position; a lost group commit changes nothing. A crash between the commit
// and the emission leaves rated-movies behind: every generation therefore
// starts by re-emitting the whole state of its partitions. The emission is
// idempotent: each record carries the full count and sum and the source
// position (partition, offset) it includes, and consumers keep, per movie,
// the record with the highest source offset.
//
// Request ids: kafka-go's producer is not idempotent, so a produce retried
// after a lost acknowledgement appends a rating twice, and a client retrying
// a 504 makes the webserver produce it again. Each partition keeps a record
// of the request ids it counted (services/lib/requestids), by time in the log's
// clock (--request-id-retention), stored in the batch's transaction
// (requestids.go): a repeat is dropped, the id reused for another rating is
// dead-lettered (request-id-conflict). A restart loads the stored record;
// `lab replay rebuild` folds the log onto it with the same code.
//
// Changelog (--restore=changelog, the default; changelogrestore.go): after
// the database commits, each partition's changes go to Kafka in one
// transaction — counts and position to the compacted --changelog, the
// request ids counted since the previous write appended to the
// time-retained --request-ids-topic (services/lib/kafkaio/changelog: the ids
// expire by time, so compaction would only rewrite them). A new owner
// restores a partition from both and reads only the tail of `ratings`;
// standby replicas (standby.go) tail both. The processor refuses to start
// when the request-id topic's retention.ms is below --request-id-retention.
//
// Rebalancing: each instance has its own database. Every movie belongs to
// one partition (key = movie id, CRC32 partitioner), so an instance owns a
// movie's aggregate while it owns the partition. When a partition moves to
// an instance with an older snapshot of it (or none), that instance resumes
// from its own snapshot — reading more of the log, never trusting a state it
// cannot prove — and its catch-up emissions carry lower source offsets than
// what the previous owner emitted, so views ignore them until they are
// current. The result stays exact at every instance count.
//
// Records that cannot be counted — not decodable, wrong types, rating out of
// range, unknown movie, key not the movie id, record on a partition its key
// does not map to — go to `ratings-dlq` with the reason in headers
// (dlq-reason, dlq-error, dlq-source-*) before the offsets that pass them are
// committed, and processing continues. An unknown movie is re-checked after
// catching up with the movies topic first, because the webserver validated it
// against its own (possibly newer) copy of the table.
//
// # At-least-once (--delivery=at-least-once)
//
// The naive consumer, for experiments: no offsets in the database, no
// request-id dedupe. A batch is applied and committed to the database, its
// rated-movies emitted, and only then its offsets committed to the group,
// which is the truth about where to resume. A crash between the two commits
// counts the batch again: the duplicates that experiments make visible. On a
// partition handed over from another instance it adopts the newest state from
// rated-movies (the changelog) and resumes at the group's offset.
//
// A data directory remembers its mode and refuses the other one.
//
// # Operations
//
// GET /state and /state/{movie_id} show the committed state (debugging).
// SetThrottle is the consumer-throttle fault: a sleep before every batch,
// with batches capped at ThrottledMaxBatch while it is set, so that a throttle
// of d counts at most about ThrottledMaxBatch/d ratings per second.
package stream
