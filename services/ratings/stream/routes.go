package stream

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Handler is the processor's debugging API (docs/events.md):
//
//	GET /state            committed state: offsets, assigned partitions, every movie's count and sum
//	GET /state/{movie_id} one movie's committed count and sum
//
// It reads the database, so it shows what a crash would leave behind.
func (p *Processor) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /state", p.handleState())
	mux.Handle("GET /state/{movie_id}", p.handleMovieState())
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such endpoint; try GET /state or GET /state/{movie_id}"})
	}))
	return mux
}

// State is the answer of GET /state.
type State struct {
	Delivery          Delivery         `json:"delivery"`
	Assigned          []int            `json:"assigned_partitions"`
	Offsets           map[string]int64 `json:"next_offsets"` // partition → next offset (effectively-once)
	DuplicatesSkipped int64            `json:"duplicates_skipped"`
	ThrottleSeconds   float64          `json:"throttle_seconds"`
	// LastRestore is the latest restore of taken-over partitions: where
	// their state came from and how long until it included the whole log
	// (effectively-once; absent before the first).
	LastRestore *Restore `json:"last_restore,omitempty"`
	// Standby lists the partitions this instance keeps a standby replica
	// of (--standby-replicas; absent without).
	Standby []int      `json:"standby_partitions,omitempty"`
	Movies  []stateRow `json:"movies"`
}

func (p *Processor) handleState() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rows, err := p.store.states(r.Context(), 0)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "reading state: " + err.Error()})
			return
		}
		offs, err := p.store.ratingOffsets(r.Context())
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "reading offsets: " + err.Error()})
			return
		}
		st := State{Delivery: p.cfg.Delivery, Assigned: p.Assigned(), Offsets: map[string]int64{},
			DuplicatesSkipped: p.duplicates.Load(), ThrottleSeconds: p.Throttle().Seconds(), LastRestore: p.LastRestore(), Standby: p.StandbyPartitions(), Movies: rows}
		if st.Assigned == nil {
			st.Assigned = []int{}
		}
		if st.Movies == nil {
			st.Movies = []stateRow{}
		}
		for part, next := range offs {
			st.Offsets[strconv.Itoa(part)] = next
		}
		writeJSON(w, http.StatusOK, st)
	})
}

func (p *Processor) handleMovieState() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("movie_id"), 10, 64)
		if err != nil || id <= 0 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "movie_id: must be a positive integer"})
			return
		}
		rows, err := p.store.states(r.Context(), id)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "reading state: " + err.Error()})
			return
		}
		if len(rows) == 0 {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "movie_id: no rating counted for movie " + strconv.FormatInt(id, 10) + " on this instance"})
			return
		}
		writeJSON(w, http.StatusOK, rows[0])
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
