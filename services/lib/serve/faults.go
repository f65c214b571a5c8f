package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ratingslab/lab/services/lib/duration"
)

// MaxFaultLatency bounds injected latency. It stays well below the server's
// WriteTimeout, so a delayed request still gets an answer rather than a
// closed connection.
const MaxFaultLatency = 30 * time.Second

// FaultSpec is the in-service fault set, as GET/POST /admin/faults show it.
type FaultSpec struct {
	// ErrorRate is the fraction (0..1) of public requests answered 500.
	ErrorRate float64 `json:"error_rate"`
	// Latency is added to every public request before it is handled.
	Latency duration.Duration `json:"latency"`
}

// Active says whether any fault is set.
func (f FaultSpec) Active() bool { return f.ErrorRate > 0 || f.Latency > 0 }

func (f FaultSpec) validate() error {
	if math.IsNaN(f.ErrorRate) || f.ErrorRate < 0 || f.ErrorRate > 1 {
		return fmt.Errorf("error_rate: must be from 0 to 1, got %v", f.ErrorRate)
	}
	if f.Latency < 0 || time.Duration(f.Latency) > MaxFaultLatency {
		return fmt.Errorf("latency: must be from 0s to %s, got %s", MaxFaultLatency, time.Duration(f.Latency))
	}
	return nil
}

// Faults holds the current in-service faults of one server.
type Faults struct {
	mu   sync.Mutex
	spec FaultSpec
	log  *slog.Logger
}

// NewFaults returns an empty fault set; changes are logged to log (nil: not logged).
func NewFaults(log *slog.Logger) *Faults {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Faults{log: log}
}

// Current returns the fault set in force.
func (f *Faults) Current() FaultSpec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.spec
}

// Set replaces the fault set after validating it.
func (f *Faults) Set(spec FaultSpec) error {
	if err := spec.validate(); err != nil {
		return err
	}
	f.mu.Lock()
	f.spec = spec
	f.mu.Unlock()
	f.log.Info("in-service faults set", "error_rate", spec.ErrorRate, "latency", time.Duration(spec.Latency).String())
	return nil
}

// Heal clears every fault.
func (f *Faults) Heal() { _ = f.Set(FaultSpec{}) }

// routeResolver is what *http.ServeMux offers to find a route without serving it.
type routeResolver interface {
	Handler(r *http.Request) (http.Handler, string)
}

// middleware applies the faults to public requests. It resolves the route
// first, so an injected 500 is counted under the route it hit.
func (f *Faults) middleware(next http.Handler) http.Handler {
	resolver, _ := next.(routeResolver)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		spec := f.Current()
		if !spec.Active() {
			next.ServeHTTP(w, r)
			return
		}
		if resolver != nil {
			_, r.Pattern = resolver.Handler(r)
		}
		if spec.Latency > 0 {
			t := time.NewTimer(time.Duration(spec.Latency))
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
			}
		}
		if spec.ErrorRate > 0 && rand.Float64() < spec.ErrorRate {
			writeError(w, http.StatusInternalServerError, fmt.Sprintf("injected fault: error_rate %v", spec.ErrorRate))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// register adds GET, POST and DELETE /admin/faults.
//
//	POST   {"error_rate":0.2,"latency":"250ms"}  replaces the fault set (absent fields are 0)
//	DELETE                                        heals
//	GET                                           shows the fault set
func (f *Faults) register(admin *http.ServeMux) {
	admin.HandleFunc("GET /admin/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, f.Current())
	})
	admin.HandleFunc("DELETE /admin/faults", func(w http.ResponseWriter, r *http.Request) {
		f.Heal()
		writeJSON(w, http.StatusOK, f.Current())
	})
	admin.HandleFunc("POST /admin/faults", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ErrorRate float64 `json:"error_rate"`
			Latency   string  `json:"latency"`
		}
		if err := DecodeJSON(w, r, &req); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		spec := FaultSpec{ErrorRate: req.ErrorRate}
		if req.Latency != "" {
			d, err := time.ParseDuration(req.Latency)
			if err != nil {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("latency: want a duration such as \"250ms\", got %q", req.Latency))
				return
			}
			spec.Latency = duration.Duration(d)
		}
		if err := f.Set(spec); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, f.Current())
	})
}

// MaxAdminBody bounds admin request bodies.
const MaxAdminBody = 16 << 10

// DecodeJSON reads one JSON object of at most MaxAdminBody bytes into v,
// rejecting unknown fields; errors name the field. For admin endpoints of parts.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr) && typeErr.Field != "":
			return fmt.Errorf("%s: want %s, got %s", typeErr.Field, typeErr.Type, typeErr.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return fmt.Errorf("%s: unknown field", strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`))
		}
		return fmt.Errorf("body: %v", err)
	}
	if dec.More() {
		return fmt.Errorf("body: must hold exactly one JSON object")
	}
	return nil
}
