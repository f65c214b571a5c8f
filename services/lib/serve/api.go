package serve

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// The lab's conventions for a part's own JSON API, so that every RPC
// service answers and reads requests alike.

// WriteJSON answers status with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may have gone; nothing left to tell it
}

// WriteError answers status with the lab's error shape {"error": msg}.
func WriteError(w http.ResponseWriter, status int, msg string) {
	WriteJSON(w, status, map[string]string{"error": msg})
}

// PathID reads the path value name as a positive integer id; the error
// names the field.
func PathID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%s: must be a positive integer, got %.40q", name, r.PathValue(name))
	}
	return id, nil
}

// ParsePage reads ?offset= (default 0) and ?limit= (default defaultLimit,
// at most maxLimit), and nothing else (Query); the error names the field.
func ParsePage(r *http.Request, defaultLimit, maxLimit int) (offset, limit int, err error) {
	q, perr := Query(r.URL.RawQuery, []string{"offset", "limit"})
	if perr != nil {
		return 0, 0, perr
	}
	limit = defaultLimit
	if v := q.Get("offset"); q.Has("offset") {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return 0, 0, fmt.Errorf("offset: must be an integer >= 0, got %.40q", v)
		}
	}
	if v := q.Get("limit"); q.Has("limit") {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxLimit {
			return 0, 0, fmt.Errorf("limit: must be an integer from 1 to %d, got %.40q", maxLimit, v)
		}
	}
	return offset, limit, nil
}

// APIVersionHeader carries the contract version of an RPC service's API
// (docs/openapi/rpc.yaml) on every answer.
const APIVersionHeader = "Api-Version"

// WithAPIVersion sets the API version header on every answer of mux. It
// keeps the mux's route resolution (Handler), which the injected faults
// use to label their answers by route.
func WithAPIVersion(version string, mux *http.ServeMux) http.Handler {
	return versionedMux{ServeMux: mux, version: version}
}

type versionedMux struct {
	*http.ServeMux
	version string
}

func (m versionedMux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(APIVersionHeader, m.version)
	m.ServeMux.ServeHTTP(w, r)
}
