package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/services/ratings/stream"
)

// restoreStatus reads each ratings-stream replica's latest restore of
// taken-over partitions (GET /state) for lab status: where their state came
// from (the changelog, its own database, the start of the log) and how long
// until it included the whole log.
func restoreStatus(o parts.Options, p layout.Ports, extras map[string]any) []string {
	if o.Delivery != "" && o.Delivery != string(stream.EffectivelyOnce) {
		return nil // measured in effectively-once (the transactional mode logs its restores)
	}
	n := max(o.Replicas["ratings-stream"], 1)
	var lines []string
	all := map[string]*stream.Restore{}
	for i := range n {
		name := parts.InstanceName("ratings-stream", i)
		r, err := readLastRestore(p.RatingsStream(i))
		switch {
		case err != nil:
			lines = append(lines, fmt.Sprintf("  %s: last restore unknown (%v)", name, err))
		case r == nil:
			lines = append(lines, fmt.Sprintf("  %s: no partitions taken over yet", name))
		default:
			all[name] = r
			lines = append(lines, fmt.Sprintf("  %s: %s", name, describeRestore(r)))
		}
	}
	extras["restores"] = all
	return append([]string{"", "ratings-stream restores (taken-over partitions, lab_stream_restore_duration_seconds):"}, lines...)
}

// describeRestore is one restore in a line.
func describeRestore(r *stream.Restore) string {
	by := map[string][]string{}
	for _, part := range r.Partitions {
		by[r.From[part]] = append(by[r.From[part]], fmt.Sprint(part))
	}
	var from []string
	for _, src := range slices.Sorted(maps.Keys(by)) {
		from = append(from, fmt.Sprintf("%s from %s", strings.Join(by[src], ","), src))
	}
	return fmt.Sprintf("partitions %s in %.3fs at %s (%d changelog records, %d ratings read after)",
		strings.Join(from, "; "), r.Seconds, r.At.Local().Format("15:04:05"), r.ChangelogRecords, r.RatingsReplayed)
}

func readLastRestore(addr string) (*stream.Restore, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/state", nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /state: %s", res.Status)
	}
	var st stream.State
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("GET /state: %w", err)
	}
	return st.LastRestore, nil
}
