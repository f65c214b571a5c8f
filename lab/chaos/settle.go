package chaos

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/ratingslab/lab/lab/audit"
	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/sampler"
)

// settleTimeout bounds the wait for every variant's API to agree with its
// store before a run's baseline.
const settleTimeout = 30 * time.Second

// observeSettled reads the baseline (audit.Observe) once the log variant
// has consumed its whole log and every variant's API agrees with its store,
// for at most settleTimeout. Ratings of an earlier run still on their way
// would otherwise be charged to this one as duplicates: ratings-stream's
// store can be behind the log (a write answered 504 becomes readable only
// when the cluster has replicated it), and the stream variant's API,
// webserver-stream's view, a projection of that store, can be behind the
// store (for seconds after a broker failure made rated-movies unwritable,
// say). When either still holds at the bound, the last reading is the
// baseline: the output says so, and the API's audit notes a disagreement.
func observeSettled(ctx context.Context, client *http.Client, dir layout.Dir, variants []string, apis map[string]string, logs []sampler.Log, out io.Writer) []audit.Snapshot {
	deadline := time.Now().Add(settleTimeout)
	said := false
	for {
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		snaps := audit.Observe(octx, client, dir, variants, apis)
		cancel()
		lagging := unsettled(snaps)
		if lagging == "" {
			lagging = consuming(ctx, logs)
		}
		if lagging == "" || time.Now().After(deadline) || ctx.Err() != nil {
			if lagging != "" {
				fmt.Fprintf(out, "  baseline taken although %s (waited %s)\n", lagging, settleTimeout)
			}
			return snaps
		}
		if !said {
			fmt.Fprintf(out, "  waiting (up to %s) for the baseline: %s\n", settleTimeout, lagging)
			said = true
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// unsettled describes the first variant whose API and store disagree ("" if none).
func unsettled(snaps []audit.Snapshot) string {
	for i, a := range snaps {
		if a.Source != audit.SourceAPI {
			continue
		}
		for _, s := range snaps[i+1:] {
			if s.Variant == a.Variant && s.Source == audit.SourceStore {
				if movies, behind := audit.Disagreement(a, s); movies > 0 {
					return fmt.Sprintf("the %s variant's API differs from its store on %d movie(s) (%d rating(s) behind)", a.Variant, movies, behind)
				}
			}
		}
	}
	return ""
}

// consuming describes a log consumer still behind the log's end ("" when
// every one is caught up, or its lag cannot be read: an unreachable broker
// is no reason to hold the run).
func consuming(ctx context.Context, logs []sampler.Log) string {
	for _, l := range logs {
		if l.Lag == nil {
			continue
		}
		mctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		lg := l.Lag.Measure(mctx)
		cancel()
		if lg.Known() && lg.Total > 0 {
			return fmt.Sprintf("the %s variant's consumer is %d record(s) behind the log", l.Variant, lg.Total)
		}
	}
	return ""
}
