package stream

// A batch of `ratings` records on its way through the processor (process):
// classify → confirm → dead-letter → commit → emit.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/lib/requestids"
	"github.com/ratingslab/lab/services/model"
)

// pending is a valid rating of a batch, waiting to be counted.
type pending struct {
	msg *kafka.Message
	ev  model.RatingEvent
}

// batchRun is what one batch has done so far.
type batchRun struct {
	seq     uint64
	touched []*aggregate    // the aggregates it changed, each once
	dead    []kafka.Message // its records for the DLQ
	next    map[int]int64   // per partition, the offset after its last record
	applied int             // records it consumed (counted, repeated or dead-lettered)
}

// process counts one batch and commits it.
func (p *Processor) process(ctx, gctx context.Context, gen *kafka.Generation, batch []kafka.Message, states map[int]*partState, aggs map[int64]*aggregate, cl map[int]*changelogPart) error {
	started := time.Now()
	p.batchSeq++
	b := &batchRun{seq: p.batchSeq, next: map[int]int64{}}

	// Decode and check every record first; count them afterwards, in
	// offset order: the request-id record must see a partition's ratings in
	// the order of the log (a rebuild reads them so), also when one of them
	// waits for the movies table below.
	valid := p.valid[:0]
	defer func() { p.valid = valid[:0] }() // reused: batches run one at a time
	valid, unknown, err := p.classify(gctx, b, batch, states, valid)
	if err != nil {
		return err
	}
	if err := p.confirm(gctx, b, valid, unknown, states, aggs); err != nil {
		return err
	}
	// Dead letters first: once the offsets below are committed, these
	// records are never read again.
	if err := p.writeDeadLetters(ctx, b.dead); err != nil {
		return err
	}
	if err := p.commit(ctx, b, states, cl); err != nil {
		return err
	}
	p.committed.Add(int64(b.applied))
	p.k.Metrics().Consumed(model.TopicRatings, b.applied)
	p.metrics.batch.Observe(time.Since(started).Seconds())

	if len(b.next) > 0 {
		job := emitJob{msgs: p.ratedMovies(b.touched), gen: gen, commit: b.next}
		if err := p.enqueue(gctx, job); err != nil {
			return nil // generation ended; the state is committed and re-emitted later
		}
	}
	return nil
}

// classify decodes and checks every record of the batch that is ours and
// new: valid ones are appended to valid (unknown of them name a movie not
// in the movies table yet), invalid ones go to the DLQ. A transient
// decoding error (the schema registry unreachable) ends the batch.
func (p *Processor) classify(gctx context.Context, b *batchRun, batch []kafka.Message, states map[int]*partState, valid []pending) (_ []pending, unknown int, _ error) {
	for i := range batch {
		m := &batch[i]
		ps := states[m.Partition]
		if ps == nil {
			continue // not ours (cannot happen with a partition fetcher)
		}
		if m.Offset < ps.next {
			continue // already in the state (cannot happen: the fetcher starts at next)
		}
		b.applied++
		b.next[m.Partition] = m.Offset + 1
		ev, err := p.validate(gctx, m)
		if err != nil {
			if retry := transient(err); retry != nil {
				return valid, unknown, retry
			}
			b.dead = append(b.dead, deadLetter(m, err))
			continue
		}
		if _, ok := p.movies.Get(ev.MovieID); !ok {
			unknown++
		}
		valid = append(valid, pending{m, ev})
	}
	return valid, unknown, nil
}

// confirm waits (bounded) for the movies table to catch up when some
// ratings name a movie it does not hold yet, then counts each valid rating
// in offset order, or dead-letters it when its movie is still unknown.
func (p *Processor) confirm(gctx context.Context, b *batchRun, valid []pending, unknown int, states map[int]*partState, aggs map[int64]*aggregate) error {
	if err := p.catchUpMovies(gctx, unknown); err != nil {
		return err
	}
	for _, v := range valid {
		if _, ok := p.movies.Get(v.ev.MovieID); !ok {
			b.dead = append(b.dead, deadLetter(v.msg, unknownMovie(v.ev.MovieID)))
			continue
		}
		p.count(b, v.msg, states[v.msg.Partition], v.ev, aggs)
	}
	return nil
}

// count adds one rating to its movie's aggregate, unless its request id
// was counted before (a repeat, skipped) or for another rating (a
// conflict, dead-lettered).
func (p *Processor) count(b *batchRun, m *kafka.Message, ps *partState, ev model.RatingEvent, aggs map[int64]*aggregate) {
	if ps.ids != nil {
		verdict, first := ps.ids.Count(requestids.Hash(ev.RequestID), requestids.Fingerprint(ev.MovieID, ev.Tenths, ev.UserID),
			m.Offset, m.Time.UnixMilli())
		switch verdict {
		case requestids.Repeat:
			p.duplicates.Add(1)
			return
		case requestids.Conflict:
			b.dead = append(b.dead, deadLetter(m, requestIDConflict(ev.RequestID, first.Offset)))
			return
		}
	}
	a := aggs[ev.MovieID]
	if a == nil {
		a = &aggregate{MovieID: ev.MovieID, Partition: m.Partition}
		aggs[ev.MovieID] = a
	}
	a.Count++
	a.SumTenths += ev.Tenths
	if ev.EventTime.After(a.LastEvent) {
		a.LastEvent = ev.EventTime
	}
	if a.batch != b.seq {
		a.batch = b.seq
		b.touched = append(b.touched, a)
	}
}

// writeDeadLetters writes the batch's dead letters to the DLQ (bounded).
func (p *Processor) writeDeadLetters(ctx context.Context, dead []kafka.Message) error {
	if len(dead) == 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err := p.dlq.Write(wctx, dead...)
	cancel()
	if err != nil {
		return fmt.Errorf("dead-letter %d record(s): %w", len(dead), err)
	}
	for _, d := range dead {
		p.metrics.dlq.WithLabelValues(header(d, hdrReason)).Inc()
	}
	return nil
}

// commit stores the touched aggregates (with, effectively once, the
// consumed offsets and request ids in the same transaction), moves each
// partition's position past the batch, and follows the changelog when it
// keeps one (cl).
func (p *Processor) commit(ctx context.Context, b *batchRun, states map[int]*partState, cl map[int]*changelogPart) error {
	for _, a := range b.touched {
		a.SourceOffset = b.next[a.Partition]
	}
	var commitOffsets map[int]int64
	var ids map[int]idChanges
	if p.cfg.Delivery == EffectivelyOnce {
		commitOffsets = b.next
		ids = make(map[int]idChanges, len(b.next))
		for part := range b.next {
			added, forget := states[part].ids.Changes()
			ids[part] = idChanges{added: added, forgetBelow: forget}
		}
	}
	if len(b.touched) > 0 || len(commitOffsets) > 0 {
		if err := p.store.commit(ctx, b.touched, commitOffsets, ids); err != nil {
			return fmt.Errorf("commit batch: %w", err)
		}
	}
	for part, n := range b.next {
		states[part].next = n
		states[part].committed.Store(n)
	}
	if p.testHookAfterCommit != nil && p.testHookAfterCommit() {
		return errSimulatedCrash
	}
	if cl != nil {
		// Not gctx: a write that the generation's end cut short would leave
		// the client in its transaction. The write is bounded by itself.
		if err := p.followChangelog(context.WithoutCancel(ctx), cl, b.touched, b.next, ids); err != nil {
			return err
		}
	}
	return nil
}

// validate decodes a ratings record and checks that it sits where its key
// says: the key is its movie id, and the partition is the one that key maps
// to (the partition owns the movie's aggregate).
func (p *Processor) validate(ctx context.Context, m *kafka.Message) (model.RatingEvent, error) {
	ev, err := p.cfg.Codec.DecodeRating(ctx, m.Value)
	if err != nil {
		return ev, err
	}
	if err := model.CheckRatingKey(m.Key, ev); err != nil {
		return ev, err
	}
	if want := model.RatingPartition(m.Key, p.partitions); want != m.Partition {
		return ev, &model.EventError{Reason: model.ReasonWrongPartition, Field: "partition",
			Msg: fmt.Sprintf("key %s belongs on partition %d (CRC32, like kcat and librdkafka), found on %d", m.Key, want, m.Partition)}
	}
	return ev, nil
}

// DLQ headers (docs/events.md).
const (
	hdrReason    = "dlq-reason"
	hdrError     = "dlq-error"
	hdrTopic     = "dlq-source-topic"
	hdrPartition = "dlq-source-partition"
	hdrOffset    = "dlq-source-offset"
)

// deadLetter is the DLQ record for m: key, value and headers as they were,
// plus why and where from.
func deadLetter(m *kafka.Message, err error) kafka.Message {
	reason := model.ReasonMalformed
	var ee *model.EventError
	if errors.As(err, &ee) {
		reason = ee.Reason
	}
	headers := append(slices.Clone(m.Headers),
		kafka.Header{Key: hdrReason, Value: []byte(reason)},
		kafka.Header{Key: hdrError, Value: []byte(err.Error())},
		kafka.Header{Key: hdrTopic, Value: []byte(m.Topic)},
		kafka.Header{Key: hdrPartition, Value: []byte(strconv.Itoa(m.Partition))},
		kafka.Header{Key: hdrOffset, Value: []byte(strconv.FormatInt(m.Offset, 10))},
	)
	return kafka.Message{Key: m.Key, Value: m.Value, Headers: headers, Time: m.Time}
}

func header(m kafka.Message, key string) string {
	for i := len(m.Headers) - 1; i >= 0; i-- {
		if m.Headers[i].Key == key {
			return string(m.Headers[i].Value)
		}
	}
	return ""
}
