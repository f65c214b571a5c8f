package servetest

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Eventually polls fn every 50ms until it returns nil, failing the test with
// fn's last error once bound has passed: tests wait on conditions, not sleeps.
func Eventually(t testing.TB, bound time.Duration, what string, fn func() error) {
	t.Helper()
	EventuallyEvery(t, bound, 50*time.Millisecond, what, fn)
}

// EventuallyEvery is Eventually polling every interval, for conditions that
// are expensive to check (a round of Prometheus queries).
func EventuallyEvery(t testing.TB, bound, interval time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", bound, what, err)
		}
		time.Sleep(interval)
	}
}

// WaitFor is Eventually for conditions that report (holds, status).
func WaitFor(t testing.TB, bound time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	Eventually(t, bound, what, func() error {
		if ok, status := cond(); !ok {
			return errors.New("last: " + status)
		}
		return nil
	})
}

// Context returns a context that ends after d or with the test, whichever
// comes first, so no call in a test can hang past its bound.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
