package chaos

import (
	"strings"
	"testing"

	"github.com/ratingslab/lab/lab/audit"
)

// A run waits for its baseline while a variant's API (webserver-stream's
// view) lags its store; a source that could not be read is no reason to.
func TestTheBaselineWaitsForTheViewToAgreeWithTheStore(t *testing.T) {
	snap := func(variant, source string, count int64) audit.Snapshot {
		return audit.Snapshot{Variant: variant, Source: source, Movies: []audit.MovieState{{MovieID: 4, Count: count, SumTenths: 10 * count}}}
	}
	agree := []audit.Snapshot{snap("rpc", audit.SourceAPI, 7), snap("rpc", audit.SourceStore, 7), snap("stream", audit.SourceAPI, 9), snap("stream", audit.SourceStore, 9)}
	if got := unsettled(agree); got != "" {
		t.Errorf("agreeing sources: %q", got)
	}
	lagging := []audit.Snapshot{snap("rpc", audit.SourceAPI, 7), snap("rpc", audit.SourceStore, 7), snap("stream", audit.SourceAPI, 5), snap("stream", audit.SourceStore, 9)}
	if got := unsettled(lagging); !strings.Contains(got, "stream variant's API differs from its store on 1 movie(s) (4 rating(s) behind)") {
		t.Errorf("a view 4 behind its store: %q", got)
	}
	unreadable := []audit.Snapshot{{Variant: "stream", Source: audit.SourceAPI, Error: "connection refused"}, snap("stream", audit.SourceStore, 9)}
	if got := unsettled(unreadable); got != "" {
		t.Errorf("an unreadable API: %q", got)
	}
}
