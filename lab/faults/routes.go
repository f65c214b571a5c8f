package faults

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// ParamValues are parameter values as given: JSON strings, numbers or
// booleans are all read as text ("2s", 0.2, true).
type ParamValues map[string]string

func (p *ParamValues) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("params: want an object of name: value")
	}
	out := ParamValues{}
	for k, v := range raw {
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			out[k] = s
			continue
		}
		var f float64
		if err := json.Unmarshal(v, &f); err == nil {
			out[k] = strconv.FormatFloat(f, 'g', -1, 64)
			continue
		}
		var t bool
		if err := json.Unmarshal(v, &t); err == nil {
			out[k] = strconv.FormatBool(t)
			continue
		}
		return fmt.Errorf("params.%s: want a string or a number, got %s", k, v)
	}
	*p = out
	return nil
}

// Listing is GET /v1/faults.
type Listing struct {
	Active  []Fault `json:"active"`
	History []Fault `json:"history"`
	// External are faults in force that the lab did not inject (set
	// through Toxiproxy's API or a part's admin endpoint).
	External []ExternalFault `json:"external"`
}

// CatalogInfo is GET /v1/faults/catalog: every fault and this lab's targets.
type CatalogInfo struct {
	Faults  []Kind  `json:"faults"`
	Targets Targets `json:"targets"`
}

// Routes maps the fault API onto a mux (the supervisor's control API, which
// answers loopback clients only):
//
//	GET    /v1/faults           active faults, recent history, and faults set outside the lab
//	GET    /v1/faults/catalog   every fault, its parameters and this lab's targets
//	GET    /v1/faults/{id}      one fault
//	POST   /v1/faults           inject: {"fault","target","params","for","owner"} → 201
//	DELETE /v1/faults/{id}      heal one
//	DELETE /v1/faults           heal all
func (inj *Injector) Routes(handle func(pattern string, h http.Handler)) {
	handle("GET /v1/faults", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l := Listing{Active: inj.Active(), History: inj.History(), External: inj.External(r.Context())}
		if l.External == nil {
			l.External = []ExternalFault{}
		}
		if l.Active == nil {
			l.Active = []Fault{}
		}
		if l.History == nil {
			l.History = []Fault{}
		}
		writeJSON(w, http.StatusOK, l)
	}))
	handle("GET /v1/faults/catalog", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, CatalogInfo{Faults: Kinds(), Targets: inj.Targets()})
	}))
	handle("GET /v1/faults/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := inj.Get(r.PathValue("id"))
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, f)
	}))
	handle("POST /v1/faults", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req Request
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			msg := err.Error()
			if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
				msg = strings.Trim(f, `"`) + ": unknown field (valid: fault, target, params, for, owner)"
			}
			writeError(w, fmt.Errorf("%w: %s", ErrInvalid, msg))
			return
		}
		f, err := inj.Inject(r.Context(), req)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, f)
	}))
	handle("DELETE /v1/faults/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := inj.Heal(r.Context(), r.PathValue("id"))
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, f)
	}))
	handle("DELETE /v1/faults", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		healed := inj.HealAll(r.Context())
		if healed == nil {
			healed = []Fault{}
		}
		writeJSON(w, http.StatusOK, healed)
	}))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError maps the injector's errors to status codes; the message drops
// the sentinel's prefix so it reads as the problem itself.
func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	msg := err.Error()
	for _, m := range []struct {
		err  error
		code int
	}{{ErrInvalid, http.StatusBadRequest}, {ErrConflict, http.StatusConflict}, {ErrNotFound, http.StatusNotFound}} {
		if errors.Is(err, m.err) {
			code = m.code
			msg = strings.TrimPrefix(msg, m.err.Error()+": ")
			break
		}
	}
	writeJSON(w, code, map[string]string{"error": msg})
}
