package servetest

import (
	"os"
	"testing"
)

// Need skips the test when a tool it drives is missing (found false), with
// hint saying how to install it — except in CI (CI=true), where .ci/run
// installs every such tool, so a missing one fails the suite instead of
// quietly skipping what it covers.
func Need(t testing.TB, found bool, tool, hint string) {
	t.Helper()
	if found {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing and CI=true: .ci/run must install it (%s)", tool, hint)
	}
	t.Skipf("%s is not installed: %s", tool, hint)
}
