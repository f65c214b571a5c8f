package chaos

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/ratingslab/lab/lab/audit"
	"github.com/ratingslab/lab/lab/layout"
)

// settleTimeout bounds the wait for every variant's API to agree with its
// store before a run's baseline.
const settleTimeout = 30 * time.Second

// observeSettled reads the baseline (audit.Observe) once every variant's
// API agrees with its store, for at most settleTimeout. The stream
// variant's API is webserver-stream's view, a projection of ratings-stream's
// store that can lag it — for seconds after a broker failure made
// rated-movies unwritable, say — and a baseline read then would charge the
// lag to the run as duplicates in the API's audit. When they still disagree
// at the bound, the last reading is the baseline and the audit notes it.
func observeSettled(ctx context.Context, client *http.Client, dir layout.Dir, variants []string, apis map[string]string, out io.Writer) []audit.Snapshot {
	deadline := time.Now().Add(settleTimeout)
	said := false
	for {
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		snaps := audit.Observe(octx, client, dir, variants, apis)
		cancel()
		lagging := unsettled(snaps)
		if lagging == "" || time.Now().After(deadline) || ctx.Err() != nil {
			if lagging != "" {
				fmt.Fprintf(out, "  baseline taken although %s (waited %s); the API audit notes it\n", lagging, settleTimeout)
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
