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
	standby := map[string][]int{}
	for i := range n {
		name := parts.InstanceName("ratings-stream", i)
		st, err := readState(p.RatingsStream(i))
		switch {
		case err != nil:
			lines = append(lines, fmt.Sprintf("  %s: last restore unknown (%v)", name, err))
		case st.LastRestore == nil:
			lines = append(lines, fmt.Sprintf("  %s: no partitions taken over yet", name))
		default:
			all[name] = st.LastRestore
			lines = append(lines, fmt.Sprintf("  %s: %s", name, describeRestore(st.LastRestore)))
		}
		if err == nil && o.StandbyReplicas > 0 {
			standby[name] = st.Standby
			lines = append(lines, fmt.Sprintf("  %s: standby replicas of partitions %s", name, partitionList(st.Standby)))
		}
	}
	extras["restores"] = all
	head := "ratings-stream restores (taken-over partitions, lab_stream_restore_duration_seconds):"
	if o.StandbyReplicas > 0 {
		extras["standby_partitions"] = standby
		head = fmt.Sprintf("ratings-stream restores (taken-over partitions, lab_stream_restore_duration_seconds; %d standby replica(s) per partition):", o.StandbyReplicas)
	}
	return append([]string{"", head}, lines...)
}

// partitionList is "0,1,2", or "none".
func partitionList(ps []int) string {
	if len(ps) == 0 {
		return "none"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, ",")
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
	records := fmt.Sprintf("%d changelog records", r.ChangelogRecords)
	if r.StandbyRecords > 0 || by["standby"] != nil {
		records += fmt.Sprintf(", %d of them on top of standby copies", r.StandbyRecords)
	}
	return fmt.Sprintf("partitions %s in %.3fs at %s (%s, %d ratings read after)",
		strings.Join(from, "; "), r.Seconds, r.At.Local().Format("15:04:05"), records, r.RatingsReplayed)
}

func readState(addr string) (*stream.State, error) {
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
	return &st, nil
}
