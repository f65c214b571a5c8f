package labsource

import (
	"context"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/ratingslab/lab/lab/latency"
	"github.com/ratingslab/lab/lab/load/ledger"
)

// Which requests a latency query counts.
const (
	requestsAll    = "all"
	requestsReads  = "reads"  // GET /api/movies[/{id}]: the ledger's get lines
	requestsWrites = "writes" // POST /api/ratings: the ledger's post lines
)

// percentiles are the latency query's columns: nearest rank over every
// request that ended in the second (latency.Rank), so exact — not
// interpolated from buckets as a dashboard's histogram_quantile is.
var percentiles = []struct {
	name string
	q    float64
}{{"p50", 0.50}, {"p90", 0.90}, {"p99", 0.99}, {"p99.9", 0.999}, {"max", 1}}

// answered is one ledger entry reduced to what the latency query needs.
type answered struct {
	variant string
	write   bool
	end     time.Time // sent_at + latency: the moment it ended
	latency time.Duration
}

// ledgerCache keeps each ledger's requests once per modification time and
// size: a ledger is appended to while its run lasts, then never changes.
type ledgerCache struct {
	mod  time.Time
	size int64
	reqs []answered
}

func (in *Instance) ledgerRequests(path string) ([]answered, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", path, err)
	}
	in.mu.Lock()
	c, ok := in.ledgers[path]
	in.mu.Unlock()
	if ok && c.mod.Equal(st.ModTime()) && c.size == st.Size() {
		return c.reqs, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", path, err)
	}
	defer f.Close()
	var reqs []answered
	_, _, _, err = ledger.Scan(f, func(e ledger.Entry) error {
		reqs = append(reqs, answered{variant: e.Variant, write: e.Type == ledger.TypePost, end: e.SentAt.Add(e.LatencyNs), latency: e.LatencyNs})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", path, err)
	}
	in.mu.Lock()
	in.ledgers[path] = ledgerCache{mod: st.ModTime(), size: st.Size(), reqs: reqs}
	in.mu.Unlock()
	return reqs, nil
}

// latencyQuery answers one time series frame per variant: per second (the
// second that ends at the row's time, as journal samples are), the exact
// percentiles of the latencies of every request that ended in it, from
// the moment it was sent, and how many there were.
func latencyQuery(_ context.Context, in *Instance, q backend.DataQuery, m Model) backend.DataResponse {
	runs, notices, errRes := in.selectRuns(q, m)
	if errRes != nil {
		return *errRes
	}
	want := m.Requests
	if want == "" {
		want = requestsAll
	}
	perSecond := map[string]map[int64][]time.Duration{}
	for _, r := range runs {
		path, err := in.store.ledgerPath(r.J)
		if err == nil {
			var reqs []answered
			reqs, err = in.ledgerRequests(path)
			for _, a := range reqs {
				if !m.wants(a.variant) || want == requestsReads && a.write || want == requestsWrites && !a.write {
					continue
				}
				if m.Run == "" && (a.end.Before(q.TimeRange.From) || a.end.After(q.TimeRange.To)) {
					continue
				}
				if perSecond[a.variant] == nil {
					perSecond[a.variant] = map[int64][]time.Duration{}
				}
				sec := a.end.Unix()
				perSecond[a.variant][sec] = append(perSecond[a.variant][sec], a.latency)
			}
		}
		if err != nil {
			notices = append(notices, data.Notice{Severity: data.NoticeSeverityWarning, Text: fmt.Sprintf("run %s: no latencies: %v", r.Name, err)})
		}
	}
	variants := make([]string, 0, len(perSecond))
	for v := range perSecond {
		variants = append(variants, v)
	}
	sort.Strings(variants)
	var frames []*data.Frame
	for _, v := range variants {
		frames = append(frames, latencyFrame(v, want, perSecond[v]))
	}
	if len(frames) == 0 {
		frames = append(frames, latencyFrame(m.Variant, want, nil))
	}
	return answer(notices, frames...)
}

func latencyFrame(variant, requests string, bySecond map[int64][]time.Duration) *data.Frame {
	secs := make([]int64, 0, len(bySecond))
	for s := range bySecond {
		secs = append(secs, s)
	}
	sort.Slice(secs, func(a, b int) bool { return secs[a] < secs[b] })
	labels := data.Labels{"variant": variant, "requests": requests}
	times := make([]time.Time, len(secs))
	counts := make([]int64, len(secs))
	cols := make([][]float64, len(percentiles))
	for i := range cols {
		cols[i] = make([]float64, len(secs))
	}
	for i, s := range secs {
		ds := bySecond[s]
		sort.Slice(ds, func(a, b int) bool { return ds[a] < ds[b] })
		times[i] = time.Unix(s+1, 0).UTC()
		counts[i] = int64(len(ds))
		for k, p := range percentiles {
			cols[k][i] = ds[latency.Rank(p.q, uint64(len(ds)))-1].Seconds()
		}
	}
	fields := []*data.Field{data.NewField("time", nil, times)}
	for k, p := range percentiles {
		f := data.NewField(p.name, labels, cols[k])
		f.SetConfig(&data.FieldConfig{Unit: unitSeconds, DisplayNameFromDS: variant + " " + p.name})
		fields = append(fields, f)
	}
	n := data.NewField("requests", labels, counts)
	n.SetConfig(&data.FieldConfig{Unit: unitCount, DisplayNameFromDS: variant + " requests"})
	fields = append(fields, n)
	frame := data.NewFrame("latency "+variant, fields...)
	frame.Meta = &data.FrameMeta{Type: data.FrameTypeTimeSeriesMulti, PreferredVisualization: data.VisTypeGraph}
	return frame
}
