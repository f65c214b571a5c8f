package serve

import "errors"

// Permanent marks err as a failure that no waiting fixes: a corrupt state
// file, records deleted from the log before they were applied. /healthz then
// answers status "failed" (503) with the error, and the supervisor and
// `lab up` report the part at once instead of waiting for it to become
// healthy; the part keeps serving /healthz so `lab status` shows why.
func Permanent(err error) error {
	if err == nil || IsPermanent(err) {
		return err
	}
	return permanentError{err}
}

// IsPermanent reports whether err (or an error it wraps) was marked
// Permanent, or says so itself with a Permanent() bool method (errors of
// packages that do not import this one: kafkaio's RetentionGapError,
// sqlitedb's CorruptError).
func IsPermanent(err error) bool {
	var p permanentError
	if errors.As(err, &p) {
		return true
	}
	var self interface{ Permanent() bool }
	return errors.As(err, &self) && self.Permanent()
}

type permanentError struct{ error }

func (p permanentError) Unwrap() error { return p.error }
