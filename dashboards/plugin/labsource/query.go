package labsource

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// Query types: backend.DataQuery.QueryType (the panel target's
// "queryType"). README.md documents each one's frame.
const (
	QueryFaults      = "faults"
	QueryExperiments = "experiments"
	QueryProbes      = "probes"
	QueryRecovery    = "recovery"
	QueryAudit       = "audit"
	QueryLatency     = "latency"
	QueryLive        = "live"
)

// QueryTypes lists every query type with what it returns, in the order the
// README and the /query-types resource show them.
var QueryTypes = []struct{ Type, Returns string }{
	{QueryFaults, "one row per fault window: start, end, id, kind, variant, targets, parameters (annotations, tables)"},
	{QueryExperiments, "one row per run in the time range: title, variants, verdict per variant"},
	{QueryProbes, "one row per run, variant, phase and probe: tolerance, observed, pass/fail"},
	{QueryRecovery, "one row per fault and variant: detection and recovery times, failures, error budget"},
	{QueryAudit, "one row per run, variant and source: acknowledged, lost, duplicates, ambiguous, phantoms"},
	{QueryLatency, "per variant, exact client latency percentiles per second from the runs' ledgers"},
	{QueryLive, "the running lab: parts and their health, active faults"},
}

// Model is a query's JSON (backend.DataQuery.JSON). Grafana adds its own
// fields (refId, datasource, intervalMs, ...), which are ignored.
type Model struct {
	// Run names one journal (its file name without .json): that run,
	// whatever the time range. Empty: every run that overlaps the range.
	Run string `json:"run,omitempty"`
	// Variant keeps one variant's rows ("rpc", "stream"); empty: all.
	Variant string `json:"variant,omitempty"`
	// Requests (latency only): "all" (default), "reads" or "writes".
	Requests string `json:"requests,omitempty"`
}

type handler func(ctx context.Context, in *Instance, q backend.DataQuery, m Model) backend.DataResponse

// handlers maps each query type to its frame builder.
var handlers = map[string]handler{
	QueryFaults:      faultsQuery,
	QueryExperiments: experimentsQuery,
	QueryProbes:      probesQuery,
	QueryRecovery:    recoveryQuery,
	QueryAudit:       auditQuery,
	QueryLatency:     latencyQuery,
	QueryLive:        liveQuery,
}

func typeNames() string {
	var names []string
	for _, t := range QueryTypes {
		names = append(names, t.Type)
	}
	return strings.Join(names, ", ")
}

// QueryData answers every query on its own: a bad query gets its own error
// response, never the others'.
func (in *Instance) QueryData(ctx context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
	resp := backend.NewQueryDataResponse()
	for _, q := range req.Queries {
		resp.Responses[q.RefID] = in.query(ctx, q)
	}
	return resp, nil
}

func (in *Instance) query(ctx context.Context, q backend.DataQuery) (res backend.DataResponse) {
	defer func() {
		// A bug in one frame builder answers that query with an error
		// instead of taking the plugin process down.
		if p := recover(); p != nil {
			res = backend.ErrDataResponse(backend.StatusInternal, fmt.Sprintf("%s query: internal error: %v", q.QueryType, p))
		}
	}()
	h, ok := handlers[q.QueryType]
	if !ok {
		if q.QueryType == "" {
			return badQuery("no queryType: set the query's \"queryType\" to one of %s", typeNames())
		}
		return badQuery("unknown queryType %q: want one of %s", q.QueryType, typeNames())
	}
	var m Model
	if len(q.JSON) > 0 {
		if err := json.Unmarshal(q.JSON, &m); err != nil {
			return badQuery("%s query: its JSON does not decode: %v", q.QueryType, err)
		}
	}
	switch m.Requests {
	case "", requestsAll, requestsReads, requestsWrites:
	default:
		return badQuery("%s query: requests %q: want %q, %q or %q", q.QueryType, m.Requests, requestsAll, requestsReads, requestsWrites)
	}
	if m.Requests != "" && q.QueryType != QueryLatency {
		return badQuery("%s query: \"requests\" applies to the latency query only", q.QueryType)
	}
	return h(ctx, in, q, m)
}

func badQuery(format string, args ...any) backend.DataResponse {
	return backend.ErrDataResponse(backend.StatusBadRequest, fmt.Sprintf(format, args...))
}

// selectRuns picks the runs a query is about: the named one, or those in
// the time range. Journals that cannot be read become notices (with a named
// run, its error); no run at all is an empty answer with a notice.
func (in *Instance) selectRuns(q backend.DataQuery, m Model) ([]run, []data.Notice, *backend.DataResponse) {
	if m.Run != "" {
		r, err := in.store.one(m.Run)
		if err != nil {
			res := badQuery("%s query: %v", q.QueryType, err)
			return nil, nil, &res
		}
		if err := checkVariant(q, m, []run{r}); err != nil {
			return nil, nil, err
		}
		return []run{r}, nil, nil
	}
	runs, problems, err := in.store.inRange(q.TimeRange.From, q.TimeRange.To)
	if err != nil {
		res := badQuery("%s query: %v", q.QueryType, err)
		return nil, nil, &res
	}
	var notices []data.Notice
	for _, p := range problems {
		notices = append(notices, data.Notice{Severity: data.NoticeSeverityWarning, Text: fmt.Sprintf("skipped run %s: %v", p.Name, p.Err)})
	}
	if len(runs) == 0 {
		notices = append(notices, data.Notice{Severity: data.NoticeSeverityInfo, Text: fmt.Sprintf("no lab runs between %s and %s in %s", q.TimeRange.From.UTC().Format(time.RFC3339), q.TimeRange.To.UTC().Format(time.RFC3339), in.store.dir.Journals())})
	}
	if err := checkVariant(q, m, runs); err != nil {
		return nil, nil, err
	}
	return runs, notices, nil
}

// checkVariant refuses a variant none of the runs has (a typo would
// otherwise read as "no data").
func checkVariant(q backend.DataQuery, m Model, runs []run) *backend.DataResponse {
	if m.Variant == "" || len(runs) == 0 {
		return nil
	}
	seen := map[string]bool{}
	var all []string
	for _, r := range runs {
		for _, v := range r.J.Variants {
			if v == m.Variant {
				return nil
			}
			if !seen[v] {
				seen[v] = true
				all = append(all, v)
			}
		}
	}
	res := badQuery("%s query: variant %q: the runs here have %s", q.QueryType, m.Variant, strings.Join(all, ", "))
	return &res
}

// wants reports whether a row of variant v belongs in the answer.
func (m Model) wants(v string) bool { return m.Variant == "" || m.Variant == v }

// answer wraps frames with the query's notices; the first frame carries
// them (Grafana shows a frame's notices on the panel).
func answer(notices []data.Notice, frames ...*data.Frame) backend.DataResponse {
	if len(frames) > 0 && len(notices) > 0 {
		if frames[0].Meta == nil {
			frames[0].Meta = &data.FrameMeta{}
		}
		frames[0].Meta.Notices = append(frames[0].Meta.Notices, notices...)
	}
	return backend.DataResponse{Frames: frames}
}
