package stream

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ratingslab/lab/services/lib/sqlitedb"
	"github.com/ratingslab/lab/services/model"
	"github.com/ratingslab/lab/services/webserver"
)

// requestLog is webserver-stream's durable record of the request ids it
// took (docs/api.md, idempotency): the API must answer a request id reused
// for another rating with 409 at once, and the log cannot tell it that
// (ratings-stream counts asynchronously, per partition). It lives in its
// own file beside the view: the view is rebuilt from the log, the record
// is not in the log — `lab replay rebuild webserver-stream` keeps it.
//
// A request id is recorded before its rating is produced, and marked
// acknowledged when the broker acknowledged it:
//   - the same id with another rating: 409, naming the first use;
//   - the same rating, acknowledged: 202 again, nothing produced;
//   - the same rating, not acknowledged (the first attempt answered 504 or
//     503, or the process died): produced again — ratings-stream counts a
//     request id once within its --request-id-retention — as long as the
//     first attempt is at most retryHorizon old; later it is 409, because
//     a second copy could then be counted twice.
//
// Records are group-committed (sqlitedb.NewGatheringGroupCommit): concurrent
// POSTs' records share one transaction, and begin returns only after the COMMIT
// that holds its record, as with a transaction each — a record must be
// durable before its rating is produced, or a crash could let the id be
// taken again for another rating.
//
// Acknowledgements are not awaited: the 202's durability is acks=all on
// `ratings`, not this mark. acknowledged puts the id in an in-memory set
// that begin consults (so a repeat is answered 202 without producing while
// the process lives) and a background flusher writes the set into a
// group-committed transaction every ackFlushInterval, all ids acknowledged
// meanwhile in one operation. A crash (kill -9) loses at most the marks not
// yet written (about ackFlushInterval and one commit's worth): such an id
// reads as "outcome unknown", so a repeat within the horizon is produced
// again (ratings-stream counts it once) and a repeat after it is 409
// "outcome is unknown". Close writes what is pending.
type requestLog struct {
	db      *sql.DB
	horizon time.Duration
	log     *slog.Logger
	writes  *sqlitedb.GroupCommit[requestOp, error]

	insert, first, ack *sql.Stmt

	acks    ackSet
	quit    chan struct{} // Close: the flusher stops
	flushed chan struct{} // closed when the flusher stopped
}

// ackSet holds the request ids acknowledged by the broker whose mark is not
// written yet. An id leaves it only after a COMMIT holding its mark.
type ackSet struct {
	mu      sync.Mutex
	pending map[string]int64 // request id → acknowledged at, Unix µs
	wake    chan struct{}    // 1-buffered: the flusher has work
}

type ackedID struct {
	id string
	us int64
}

// maxRequestBatch bounds the records and flushes of acknowledgements in
// one transaction.
const maxRequestBatch = 256

// requestGather: while the record is busy (its last COMMIT ended less than
// this ago), a record waits this long after that COMMIT so the POSTs
// arriving meanwhile share its transaction (sqlitedb.NewGatheringGroupCommit).
// At 3,600 ratings/s a transaction's BEGIN and COMMIT were ~16 % of
// webserver-stream's CPU with ~3 ratings each; an idle record commits at
// once.
const requestGather = time.Millisecond

// requestOp is a record (begin) or an acknowledgement of one request id.
type requestOp struct {
	rating model.Rating // begin: the rating
	at     time.Time
	acks   []ackedID // a flush of acknowledgements instead of a record
}

// requestsFile is the record's database inside the data directory.
const requestsFile = "requests.db"

const requestsSchema = `
-- every request id webserver-stream took, with the rating it named
CREATE TABLE IF NOT EXISTS requests (
	request_id    TEXT    PRIMARY KEY,
	movie_id      INTEGER NOT NULL,
	rating_tenths INTEGER NOT NULL,
	user_id       INTEGER NOT NULL,
	first_us      INTEGER NOT NULL, -- first attempt, Unix microseconds
	acked_us      INTEGER NOT NULL  -- broker acknowledgement, 0 while unknown
) WITHOUT ROWID;
`

// DefaultRetryHorizon is how long after a first attempt with an unknown
// outcome a retry is produced again; ratings-stream's default
// --request-id-retention (15m) covers it with room for kafka-go's own
// background retries.
const DefaultRetryHorizon = 5 * time.Minute

func openRequestLog(dir string, horizon time.Duration, log *slog.Logger) (*requestLog, error) {
	abs, err := sqlitedb.File(dir, requestsFile)
	if err != nil {
		return nil, err
	}
	// One connection: every POST writes, and writes queue in database/sql.
	db, err := sqlitedb.Open(abs, sqlitedb.Options{Sync: sqlitedb.Normal})
	if err != nil {
		return nil, err
	}
	if err := sqlitedb.Exec(db, requestsSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s is not a usable request-id database: %w", abs, err)
	}
	if horizon <= 0 {
		horizon = DefaultRetryHorizon
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &requestLog{db: db, horizon: horizon, log: log, quit: make(chan struct{}), flushed: make(chan struct{})}
	l.acks.pending = map[string]int64{}
	l.acks.wake = make(chan struct{}, 1)
	if err := sqlitedb.Prepare(db,
		sqlitedb.Statement{Into: &l.insert, SQL: insertRequestSQL},
		sqlitedb.Statement{Into: &l.first, SQL: firstUseSQL},
		sqlitedb.Statement{Into: &l.ack, SQL: ackSQL},
	); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", abs, err)
	}
	l.writes = sqlitedb.NewGatheringGroupCommit(db, maxRequestBatch, requestGather, l.applyBatch)
	go l.flushAcks()
	return l, nil
}

const (
	insertRequestSQL = `INSERT INTO requests (request_id, movie_id, rating_tenths, user_id, first_us, acked_us)
		VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT (request_id) DO NOTHING`
	firstUseSQL = `SELECT movie_id, rating_tenths, user_id, first_us, acked_us FROM requests WHERE request_id = ?`
	ackSQL      = `UPDATE requests SET acked_us = ? WHERE request_id = ? AND acked_us = 0`
)

// Close writes the pending acknowledgements, stops the committer and closes
// the database.
func (l *requestLog) Close() error {
	close(l.quit)
	<-l.flushed
	ctx, cancel := context.WithTimeout(context.Background(), sqlitedb.CommitTimeout)
	err := l.syncAcks(ctx)
	cancel()
	if err != nil {
		err = fmt.Errorf("writing the acknowledgements still pending: %w", err)
	}
	l.writes.Close()
	return errors.Join(err, l.db.Close())
}

// errAlreadyAcknowledged: the same rating was acknowledged before; answer
// as then, produce nothing.
var errAlreadyAcknowledged = errors.New("already acknowledged")

// begin records r as attempted at now, or decides from its first use:
// nil (produce it), errAlreadyAcknowledged, or a *webserver.ConflictError.
func (l *requestLog) begin(ctx context.Context, r model.Rating, now time.Time) error {
	decision, err := l.writes.Do(ctx, requestOp{rating: r, at: now})
	if err != nil {
		return err
	}
	return decision
}

// acknowledged marks a request id's rating acknowledged by the broker: at
// once in memory (begin answers a repeat from there), in the store with
// the flusher's next write. It does not wait for that write.
func (l *requestLog) acknowledged(requestID string, now time.Time) {
	us := now.UnixMicro()
	l.acks.mu.Lock()
	l.acks.pending[requestID] = us
	l.acks.mu.Unlock()
	select {
	case l.acks.wake <- struct{}{}:
	default: // the flusher is already due to run
	}
}

// pendingAck reports whether requestID was acknowledged and its mark is not
// written yet.
func (l *requestLog) pendingAck(requestID string) bool {
	l.acks.mu.Lock()
	defer l.acks.mu.Unlock()
	_, ok := l.acks.pending[requestID]
	return ok
}

// ackFlushInterval is how long the flusher lets acknowledgements gather
// after the first one before it writes them: at 3,500 ratings/s about 35
// marks share one operation, and a flush costs at most ~100 transactions a
// second instead of one per POST (a mark flushed as soon as it came mostly
// found the committer idle and took a transaction of its own). It is also
// about what a crash can lose of the marks, with the commit writing them.
const ackFlushInterval = 10 * time.Millisecond

// flushAcks writes the pending acknowledgements, in one operation of the
// next group commit, until Close. Nobody waits for it. It is the only
// writer while it runs (Close writes after it stopped) and waits for each
// write, so the pending set never holds a mark being written: a failed
// write leaves its marks pending for the next.
func (l *requestLog) flushAcks() {
	defer close(l.flushed)
	gather := time.NewTimer(0)
	<-gather.C
	for {
		select {
		case <-l.acks.wake:
		case <-l.quit:
			return
		}
		gather.Reset(ackFlushInterval)
		select {
		case <-gather.C:
		case <-l.quit:
			return // Close writes every pending one
		}
		if err := l.syncAcks(context.Background()); err != nil {
			l.log.Warn("writing request-id acknowledgements failed; retrying in a second", "error", err.Error())
			select {
			case <-time.After(time.Second):
			case <-l.quit:
				return // Close writes every pending one
			}
			select {
			case l.acks.wake <- struct{}{}:
			default:
			}
		}
	}
}

// syncAcks writes every acknowledgement pending when it is called and
// returns after the COMMIT that holds them.
func (l *requestLog) syncAcks(ctx context.Context) error {
	l.acks.mu.Lock()
	batch := make([]ackedID, 0, len(l.acks.pending))
	for id, us := range l.acks.pending {
		batch = append(batch, ackedID{id, us})
	}
	l.acks.mu.Unlock()
	return l.writeAcks(ctx, batch)
}

// writeAcks writes acks in the next group commit and, once committed, takes
// them out of the pending set.
func (l *requestLog) writeAcks(ctx context.Context, acks []ackedID) error {
	if len(acks) == 0 {
		return nil
	}
	if _, err := l.writes.Do(ctx, requestOp{acks: acks}); err != nil {
		return err
	}
	l.acks.mu.Lock()
	for _, a := range acks {
		delete(l.acks.pending, a.id)
	}
	l.acks.mu.Unlock()
	return nil
}

// applyBatch writes a batch of records and flushes of acknowledgements in
// tx, in their order; decisions[i] is begin's answer for a record.
func (l *requestLog) applyBatch(ctx context.Context, tx *sql.Tx, ops []requestOp, decisions []error) error {
	var ins, first, ack *sql.Stmt
	for i, op := range ops {
		r := op.rating
		if op.acks != nil {
			if ack == nil {
				ack = tx.StmtContext(ctx, l.ack)
			}
			for _, a := range op.acks {
				if _, err := ack.ExecContext(ctx, a.us, a.id); err != nil {
					return fmt.Errorf("acknowledge %q: %w", a.id, err)
				}
			}
			continue
		}
		if ins == nil {
			ins, first = tx.StmtContext(ctx, l.insert), tx.StmtContext(ctx, l.first)
		}
		// Most ids are new: insert first, read the first use only when
		// the id was taken before (earlier, or earlier in this batch).
		res, err := ins.ExecContext(ctx, r.RequestID, r.MovieID, r.Tenths, r.UserID, op.at.UnixMicro())
		if err != nil {
			return fmt.Errorf("record %q: %w", r.RequestID, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("record %q: %w", r.RequestID, err)
		} else if n == 1 {
			continue // new: produce it
		}
		var fr model.Rating
		var firstUS, ackedUS int64
		if err := first.QueryRowContext(ctx, r.RequestID).Scan(&fr.MovieID, &fr.Tenths, &fr.UserID, &firstUS, &ackedUS); err != nil {
			return fmt.Errorf("first use of %q: %w", r.RequestID, err)
		}
		// An acknowledgement not written yet answers as a written one;
		// it stays pending until a COMMIT holds it, so no id falls
		// between the two.
		acked := ackedUS != 0 || l.pendingAck(r.RequestID)
		decisions[i] = l.decide(r, fr, time.UnixMicro(firstUS), acked, op.at)
	}
	return nil
}

// decide answers a request id taken before, first with rating first at
// at: nil (produce again), errAlreadyAcknowledged or a 409.
func (l *requestLog) decide(r, first model.Rating, at time.Time, acked bool, now time.Time) error {
	switch {
	case !first.SamePayload(r):
		return &webserver.ConflictError{Msg: model.RequestIDConflict(r.RequestID, first, at)}
	case acked:
		return errAlreadyAcknowledged
	case now.Sub(at) > l.horizon:
		return &webserver.ConflictError{Msg: fmt.Sprintf("request_id: %q was first sent %s and its outcome is unknown (not acknowledged); a retry more than %s after the first attempt could be counted twice, so it is refused: check GET /api/movies/%d and send the rating with a new request_id if it is missing",
			r.RequestID, at.UTC().Format(time.RFC3339Nano), l.horizon, r.MovieID)}
	}
	return nil // a retry of an unknown outcome, within the horizon: produce again
}
