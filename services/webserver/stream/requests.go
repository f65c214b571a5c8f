package stream

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ratingslab/lab/services/model"
	"github.com/ratingslab/lab/services/sqlitedb"
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
type requestLog struct {
	db      *sql.DB
	horizon time.Duration
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
	return &requestLog{db: db, horizon: horizon}, nil
}

func (l *requestLog) Close() error { return l.db.Close() }

// errAlreadyAcknowledged: the same rating was acknowledged before; answer
// as then, produce nothing.
var errAlreadyAcknowledged = errors.New("already acknowledged")

// begin records r as attempted at now, or decides from its first use:
// nil (produce it), errAlreadyAcknowledged, or a *webserver.ConflictError.
func (l *requestLog) begin(ctx context.Context, r model.Rating, now time.Time) error {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var first model.Rating
	var firstUS, ackedUS int64
	err = tx.QueryRowContext(ctx, `SELECT movie_id, rating_tenths, user_id, first_us, acked_us FROM requests WHERE request_id = ?`, r.RequestID).
		Scan(&first.MovieID, &first.Tenths, &first.UserID, &firstUS, &ackedUS)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, `INSERT INTO requests (request_id, movie_id, rating_tenths, user_id, first_us, acked_us) VALUES (?, ?, ?, ?, ?, 0)`,
			r.RequestID, r.MovieID, r.Tenths, r.UserID, now.UnixMicro()); err != nil {
			return err
		}
		return tx.Commit()
	case err != nil:
		return err
	}
	at := time.UnixMicro(firstUS)
	switch {
	case !first.SamePayload(r):
		return &webserver.ConflictError{Msg: model.RequestIDConflict(r.RequestID, first, at)}
	case ackedUS != 0:
		return errAlreadyAcknowledged
	case now.Sub(at) > l.horizon:
		return &webserver.ConflictError{Msg: fmt.Sprintf("request_id: %q was first sent %s and its outcome is unknown (not acknowledged); a retry more than %s after the first attempt could be counted twice, so it is refused: check GET /api/movies/%d and send the rating with a new request_id if it is missing",
			r.RequestID, at.UTC().Format(time.RFC3339Nano), l.horizon, r.MovieID)}
	}
	return nil // a retry of an unknown outcome, within the horizon: produce again
}

// acknowledged marks a request id's rating acknowledged by the broker.
func (l *requestLog) acknowledged(ctx context.Context, requestID string, now time.Time) error {
	_, err := l.db.ExecContext(ctx, `UPDATE requests SET acked_us = ? WHERE request_id = ? AND acked_us = 0`, now.UnixMicro(), requestID)
	return err
}
