package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ratingslab/lab/lab/labtest"
)

// Every command that talks to a running lab takes its ports from the lab's
// state: with a lab on a non-default port base, each one given only --dir
// reaches it. A --port-base that contradicts the lab's is refused.
func TestCommandsTakeTheRunningLabsPortsFromItsState(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	t.Parallel()
	l := labtest.Start(t)
	if l.Ports.Base == 7700 {
		t.Fatal("the test lab must not run on the default port base")
	}
	export := filepath.Join(t.TempDir(), "movies.jsonl")
	snapshot := filepath.Join(t.TempDir(), "snap.json")
	base := fmt.Sprint(l.Ports.Base)
	cases := []struct {
		args []string
		want string // in the output
	}{
		{[]string{"status"}, "ports from " + base},
		{[]string{"load", "--scenario", "smoke", "--duration", "2s", "--quiet"}, l.Ports.WebserverStream()},
		{[]string{"chaos", "list"}, "webserver-rpc->ratings-rpc"},
		{[]string{"chaos", "inject", "latency", "--target", "ratings-rpc->movies-rpc", "--latency", "10ms", "--for", "30s"}, "ratings-rpc->movies-rpc"},
		{[]string{"chaos", "status"}, "ratings-rpc->movies-rpc"},
		{[]string{"status"}, "latency"},
		{[]string{"chaos", "heal", "--all"}, "heal"},
		{[]string{"audit", "snapshot", "--out", snapshot}, ""},
		{[]string{"replay", "offsets", "--group", "ratings-stream", "--to-earliest"}, "ratings"},
		{[]string{"log", "export", "--topic", "movies", "--out", export, "--quiet"}, ""},
		{[]string{"bench", "post", "--variants", "rpc", "--start", "20", "--max-steps", "1", "--ceiling=false", "--step", "1s", "--max-p99", "2s"}, "20"},
	}
	for _, tc := range cases {
		out, err := l.RunDirOnly(tc.args...)
		if err != nil {
			t.Errorf("lab --dir D %s: %v\n%s", strings.Join(tc.args, " "), err, out)
			continue
		}
		if !strings.Contains(out, tc.want) {
			t.Errorf("lab --dir D %s: output should contain %q:\n%s", strings.Join(tc.args, " "), tc.want, out)
		}
		if strings.Contains(out, ":7710") || strings.Contains(out, ":7720") || strings.Contains(out, ":7700") {
			t.Errorf("lab --dir D %s mentions a default port:\n%s", strings.Join(tc.args, " "), out)
		}
	}
	if b, err := os.ReadFile(export); err != nil || !strings.Contains(string(b), `"topic":"movies"`) && len(b) == 0 {
		t.Errorf("log export wrote nothing to %s: %v", export, err)
	}
	if b, err := os.ReadFile(snapshot); err != nil || !strings.Contains(string(b), "stream") {
		t.Errorf("audit snapshot wrote no variant state: %v\n%s", err, b)
	}

	out, err := l.RunDirOnly("--port-base", "7700", "chaos", "status")
	if err == nil || !strings.Contains(out, "runs on port base "+base) {
		t.Errorf("a --port-base contradicting the running lab's: err %v, want a refusal naming %s:\n%s", err, base, out)
	}
}
