package labsource

import (
	"encoding/json"
	"net/http"
	"sort"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/resource/httpadapter"

	"github.com/ratingslab/lab/lab/journal"
)

// routes maps every resource the query editor (or a user with curl, at
// /api/datasources/uid/<uid>/resources/...) can ask for:
//
//	GET query-types   every query type and what it returns
//	GET runs          every journal: name, title, kind, times, variants, verdict; unreadable ones with their error
//	GET variants      the variants of the runs and of the running lab
//	GET faults        every fault window of every run (?run=NAME: of one run)
func (in *Instance) routes() backend.CallResourceHandler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /query-types", in.handleQueryTypes)
	mux.HandleFunc("GET /runs", in.handleRuns)
	mux.HandleFunc("GET /variants", in.handleVariants)
	mux.HandleFunc("GET /faults", in.handleFaults)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no resource "+r.Method+" "+r.URL.Path+": try GET query-types, runs, variants or faults")
	})
	return httpadapter.New(mux)
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func (in *Instance) handleQueryTypes(w http.ResponseWriter, _ *http.Request) {
	type qt struct {
		Type    string `json:"type"`
		Returns string `json:"returns"`
	}
	out := []qt{}
	for _, t := range QueryTypes {
		out = append(out, qt{t.Type, t.Returns})
	}
	writeJSON(w, http.StatusOK, out)
}

// RunInfo is one entry of GET runs.
type RunInfo struct {
	Name     string          `json:"name"`
	Title    string          `json:"title,omitempty"`
	Kind     string          `json:"kind,omitempty"`
	Started  time.Time       `json:"started,omitzero"`
	Ended    time.Time       `json:"ended,omitzero"`
	Variants []string        `json:"variants,omitempty"`
	Verdict  map[string]bool `json:"verdict,omitempty"`
	Faults   int             `json:"faults"`
	// Error says why the journal cannot be read.
	Error string `json:"error,omitempty"`
}

func (in *Instance) handleRuns(w http.ResponseWriter, _ *http.Request) {
	runs, problems, err := in.store.all()
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	out := []RunInfo{}
	for _, r := range runs {
		out = append(out, RunInfo{Name: r.Name, Title: r.J.Title, Kind: r.J.Kind, Started: r.J.Started, Ended: r.J.Ended,
			Variants: r.J.Variants, Verdict: r.J.Verdict, Faults: len(r.J.Faults)})
	}
	for _, p := range problems {
		out = append(out, RunInfo{Name: p.Name, Error: p.Err.Error()})
	}
	writeJSON(w, http.StatusOK, out)
}

func (in *Instance) handleVariants(w http.ResponseWriter, r *http.Request) {
	seen := map[string]bool{}
	if in.store != nil {
		runs, _, err := in.store.all()
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		for _, run := range runs {
			for _, v := range run.J.Variants {
				seen[v] = true
			}
		}
	}
	if c, err := in.control(); err == nil {
		if ps, err := c.Parts(r.Context()); err == nil {
			for _, p := range ps {
				if p.Variant != "" && p.Variant != "lab" {
					seen[p.Variant] = true
				}
			}
		}
	}
	out := []string{}
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	writeJSON(w, http.StatusOK, out)
}

// FaultWindow is one entry of GET faults.
type FaultWindow struct {
	Run string `json:"run"`
	journal.FaultEvent
}

func (in *Instance) handleFaults(w http.ResponseWriter, r *http.Request) {
	var runs []run
	if name := r.URL.Query().Get("run"); name != "" {
		one, err := in.store.one(name)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		runs = []run{one}
	} else {
		var err error
		if runs, _, err = in.store.all(); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	out := []FaultWindow{}
	for _, run := range runs {
		for _, ev := range run.J.Faults {
			out = append(out, FaultWindow{Run: run.Name, FaultEvent: ev})
		}
	}
	writeJSON(w, http.StatusOK, out)
}
