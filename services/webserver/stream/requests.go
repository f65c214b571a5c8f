package stream

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
// Both writes are group-committed (sqlitedb.GroupCommit): concurrent POSTs'
// records and acknowledgements share one transaction, and each call
// returns only after the COMMIT that holds it, as with a transaction each.
type requestLog struct {
	db      *sql.DB
	horizon time.Duration
	writes  *sqlitedb.GroupCommit[requestOp, error]

	insert, first, ack *sql.Stmt
}

// maxRequestBatch bounds the records and acknowledgements in one
// transaction.
const maxRequestBatch = 256

// requestOp is a record (begin) or an acknowledgement of one request id.
type requestOp struct {
	rating model.Rating // begin: the rating; acknowledged: its RequestID only
	at     time.Time
	ack    bool
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

func openRequestLog(dir string, horizon time.Duration) (*requestLog, error) {
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
	l := &requestLog{db: db, horizon: horizon}
	if err := sqlitedb.Prepare(db,
		sqlitedb.Statement{Into: &l.insert, SQL: insertRequestSQL},
		sqlitedb.Statement{Into: &l.first, SQL: firstUseSQL},
		sqlitedb.Statement{Into: &l.ack, SQL: ackSQL},
	); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", abs, err)
	}
	l.writes = sqlitedb.NewGroupCommit(db, maxRequestBatch, l.applyBatch)
	return l, nil
}

const (
	insertRequestSQL = `INSERT INTO requests (request_id, movie_id, rating_tenths, user_id, first_us, acked_us)
		VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT (request_id) DO NOTHING`
	firstUseSQL = `SELECT movie_id, rating_tenths, user_id, first_us, acked_us FROM requests WHERE request_id = ?`
	ackSQL      = `UPDATE requests SET acked_us = ? WHERE request_id = ? AND acked_us = 0`
)

// Close stops the committer (after the batch it is writing) and closes the
// database.
func (l *requestLog) Close() error {
	l.writes.Close()
	return l.db.Close()
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

// acknowledged marks a request id's rating acknowledged by the broker.
func (l *requestLog) acknowledged(ctx context.Context, requestID string, now time.Time) error {
	_, err := l.writes.Do(ctx, requestOp{rating: model.Rating{RequestID: requestID}, at: now, ack: true})
	return err
}

// applyBatch writes a batch of records and acknowledgements in tx, in
// their order; decisions[i] is begin's answer for a record.
func (l *requestLog) applyBatch(ctx context.Context, tx *sql.Tx, ops []requestOp, decisions []error) error {
	var ins, first, ack *sql.Stmt
	for i, op := range ops {
		r := op.rating
		if op.ack {
			if ack == nil {
				ack = tx.StmtContext(ctx, l.ack)
			}
			if _, err := ack.ExecContext(ctx, op.at.UnixMicro(), r.RequestID); err != nil {
				return fmt.Errorf("acknowledge %q: %w", r.RequestID, err)
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
		decisions[i] = l.decide(r, fr, time.UnixMicro(firstUS), ackedUS != 0, op.at)
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
