package serve_test

import (
	"context"
	"flag"
	"io"
	"net/http"
	"runtime"
	"testing"

	"github.com/ratingslab/lab/services/lib/serve"
)

// --procs sets the part's GOMAXPROCS when it starts serving; a value below
// one is a flag error, before anything starts.
func TestProcsFlagSetsThePartsGOMAXPROCS(t *testing.T) {
	parse := func(args ...string) (serve.Listen, error) {
		var l serve.Listen
		fs := flag.NewFlagSet("part", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		l.Flags(fs, "127.0.0.1:0", "the API")
		return l, fs.Parse(args)
	}
	for _, bad := range []string{"0", "-1", "two"} {
		if _, err := parse("--procs", bad); err == nil {
			t.Errorf("--procs %s: no error", bad)
		}
	}
	l, err := parse("--procs", "1", "--admin-listen", "127.0.0.1:0")
	if err != nil || l.Procs != 1 {
		t.Fatalf("--procs 1: Procs %d, err %v", l.Procs, err)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	runtime.GOMAXPROCS(2)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // serve nothing: Run applies the setting first
	s := serve.New(serve.Options{Public: http.NotFoundHandler()})
	_ = s.Run(ctx, l)
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Errorf("GOMAXPROCS after Run with --procs 1: %d", got)
	}
}
