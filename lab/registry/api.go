package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"unicode"

	"github.com/hamba/avro/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/lib/metricname"
)

// ContentType is what Confluent's Schema Registry answers with.
const ContentType = "application/vnd.schemaregistry.v1+json"

// maxBody bounds a request body (a schema is a few KB; Confluent's own
// limit is in the same range).
const maxBody = 1 << 20

// Error codes of Confluent's API (the "error_code" field).
const (
	codeSubjectNotFound       = 40401
	codeVersionNotFound       = 40402
	codeSchemaNotFound        = 40403
	codeSubjectSoftDeleted    = 40404
	codeSubjectNotSoftDeleted = 40405
	codeSubjectLevelNotSet    = 40408
	codeIncompatible          = 409
	codeInvalidSchema         = 42201
	codeInvalidVersion        = 42202
	codeInvalidLevel          = 42203
	codeInvalidSubject        = 42208
	codeBadRequest            = 400
	codeStoreError            = 50001
)

type apiError struct {
	status int
	code   int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errf(status, code int, format string, a ...any) *apiError {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, a...)}
}

// api is the Confluent-compatible REST API over a store.
type api struct {
	st        *store
	log       *slog.Logger
	decisions *prometheus.CounterVec
}

// Decisions of the registry on a registration, as metric label values.
const (
	DecisionRegistered   = "registered"   // a new version was written
	DecisionExisting     = "existing"     // the subject already held the schema
	DecisionIncompatible = "incompatible" // refused by the compatibility check (409)
	DecisionInvalid      = "invalid"      // the schema does not parse (422)
)

func newAPI(st *store, reg prometheus.Registerer, log *slog.Logger) *api {
	a := &api{st: st, log: log, decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricname.SchemaRegistryDecisionsTotal,
		Help: "Registrations the schema registry decided, by decision (registered, existing, incompatible, invalid).",
	}, []string{"decision"})}
	for _, d := range []string{DecisionRegistered, DecisionExisting, DecisionIncompatible, DecisionInvalid} {
		a.decisions.WithLabelValues(d)
	}
	if reg != nil {
		reg.MustRegister(a.decisions)
	}
	return a
}

// handler adapts a handler that returns its answer or an *apiError.
func (a *api) handler(h func(r *http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := h(r)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				a.log.Error("registry store", "error", err.Error())
				ae = errf(http.StatusInternalServerError, codeStoreError, "Error in the backend data store: %v", err)
			}
			writeJSON(w, ae.status, map[string]any{"error_code": ae.code, "message": ae.msg})
			return
		}
		if s, ok := v.(rawSchema); ok {
			w.Header().Set("Content-Type", ContentType)
			io.WriteString(w, string(s))
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
}

// rawSchema is answered as the schema text itself (the /schema endpoints).
type rawSchema string

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", ContentType)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (a *api) routes(mux *http.ServeMux) {
	mux.Handle("GET /{$}", a.handler(func(*http.Request) (any, error) { return map[string]any{}, nil }))
	mux.Handle("GET /schemas/types", a.handler(func(*http.Request) (any, error) { return []string{"AVRO"}, nil }))
	mux.Handle("GET /schemas/ids/{id}", a.handler(a.schemaByID))
	mux.Handle("GET /schemas/ids/{id}/schema", a.handler(a.rawSchemaByID))
	mux.Handle("GET /schemas/ids/{id}/versions", a.handler(a.schemaVersions))
	mux.Handle("GET /subjects", a.handler(a.subjects))
	mux.Handle("GET /subjects/{subject}/versions", a.handler(a.versions))
	mux.Handle("POST /subjects/{subject}/versions", a.handler(a.register))
	mux.Handle("GET /subjects/{subject}/versions/{version}", a.handler(a.version))
	mux.Handle("GET /subjects/{subject}/versions/{version}/schema", a.handler(a.rawVersion))
	mux.Handle("POST /subjects/{subject}", a.handler(a.lookup))
	mux.Handle("DELETE /subjects/{subject}", a.handler(a.deleteSubject))
	mux.Handle("DELETE /subjects/{subject}/versions/{version}", a.handler(a.deleteVersion))
	mux.Handle("POST /compatibility/subjects/{subject}/versions/{version}", a.handler(a.compatibility))
	mux.Handle("POST /compatibility/subjects/{subject}/versions", a.handler(a.compatibility))
	mux.Handle("GET /config", a.handler(a.getConfig))
	mux.Handle("PUT /config", a.handler(a.putConfig))
	mux.Handle("GET /config/{subject}", a.handler(a.getConfig))
	mux.Handle("PUT /config/{subject}", a.handler(a.putConfig))
	mux.Handle("DELETE /config/{subject}", a.handler(a.deleteConfig))
	mux.Handle("GET /mode", a.handler(func(*http.Request) (any, error) { return map[string]string{"mode": "READWRITE"}, nil }))
	mux.Handle("/", a.handler(func(r *http.Request) (any, error) {
		return nil, errf(http.StatusNotFound, 404, "HTTP 404 Not Found: no route %s %s", r.Method, r.URL.Path)
	}))
}

func subjectOf(r *http.Request) (string, error) {
	s := r.PathValue("subject")
	if s == "" || len(s) > 255 || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "", errf(http.StatusUnprocessableEntity, codeInvalidSubject, "Subject name %q is invalid: 1 to 255 characters, no control characters", clip(s))
	}
	return s, nil
}

func idOf(r *http.Request) (int, error) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id < 1 {
		return 0, errf(http.StatusNotFound, codeSchemaNotFound, "Schema %q not found", clip(r.PathValue("id")))
	}
	return id, nil
}

// versionOf reads {version}: a number from 1 to 2^31-1, "latest", or -1 (latest).
func versionOf(r *http.Request) (int, error) {
	s := r.PathValue("version")
	if s == "" || s == "latest" || s == "-1" {
		return -1, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 || v > math.MaxInt32 {
		return 0, errf(http.StatusUnprocessableEntity, codeInvalidVersion,
			"The specified version '%s' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"", clip(s))
	}
	return v, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// liveVersions returns a subject's versions, or 40401.
func (a *api) liveVersions(ctx context.Context, subject string) ([]Version, error) {
	vs, err := a.st.versions(ctx, subject)
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		return nil, errf(http.StatusNotFound, codeSubjectNotFound, "Subject '%s' not found.", clip(subject))
	}
	return vs, nil
}

func (a *api) pickVersion(r *http.Request) (Version, error) {
	subject, err := subjectOf(r)
	if err != nil {
		return Version{}, err
	}
	want, err := versionOf(r)
	if err != nil {
		return Version{}, err
	}
	vs, err := a.liveVersions(r.Context(), subject)
	if err != nil {
		return Version{}, err
	}
	if want == -1 {
		return vs[len(vs)-1], nil
	}
	for _, v := range vs {
		if v.Version == want {
			return v, nil
		}
	}
	return Version{}, errf(http.StatusNotFound, codeVersionNotFound, "Version %d not found.", want)
}

func (a *api) schemaByID(r *http.Request) (any, error) {
	text, err := a.lookupID(r)
	if err != nil {
		return nil, err
	}
	return map[string]string{"schema": text}, nil
}

func (a *api) rawSchemaByID(r *http.Request) (any, error) {
	text, err := a.lookupID(r)
	return rawSchema(text), err
}

func (a *api) lookupID(r *http.Request) (string, error) {
	id, err := idOf(r)
	if err != nil {
		return "", err
	}
	text, ok, err := a.st.schemaByID(r.Context(), id)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", errf(http.StatusNotFound, codeSchemaNotFound, "Schema %d not found", id)
	}
	return text, nil
}

func (a *api) schemaVersions(r *http.Request) (any, error) {
	if _, err := a.lookupID(r); err != nil {
		return nil, err
	}
	id, _ := idOf(r)
	us, err := a.st.usages(r.Context(), id)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, 0, len(us))
	for _, u := range us {
		out = append(out, map[string]any{"subject": u.Subject, "version": u.Version})
	}
	return out, nil
}

func (a *api) subjects(r *http.Request) (any, error) {
	return a.st.subjects(r.Context(), r.URL.Query().Get("deleted") == "true")
}

func (a *api) versions(r *http.Request) (any, error) {
	subject, err := subjectOf(r)
	if err != nil {
		return nil, err
	}
	vs, err := a.liveVersions(r.Context(), subject)
	if err != nil {
		return nil, err
	}
	out := make([]int, len(vs))
	for i, v := range vs {
		out[i] = v.Version
	}
	return out, nil
}

func (a *api) version(r *http.Request) (any, error) { return a.pickVersion(r) }

func (a *api) rawVersion(r *http.Request) (any, error) {
	v, err := a.pickVersion(r)
	return rawSchema(v.Schema), err
}

// schemaRequest is the body of registration, lookup and compatibility calls.
type schemaRequest struct {
	Schema     string            `json:"schema"`
	SchemaType string            `json:"schemaType"`
	References []json.RawMessage `json:"references"`
}

// readSchema decodes and parses a request's schema (422 42201 when it does not parse).
func readSchema(r *http.Request) (schemaRequest, error) {
	var req schemaRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody+1))
	if err := dec.Decode(&req); err != nil {
		return req, errf(http.StatusUnprocessableEntity, codeInvalidSchema, "Invalid request body: %v", err)
	}
	switch {
	case req.SchemaType != "" && !strings.EqualFold(req.SchemaType, "AVRO"):
		return req, errf(http.StatusUnprocessableEntity, codeInvalidSchema, "Schema type %q is not supported (this registry holds AVRO only)", clip(req.SchemaType))
	case len(req.References) > 0:
		return req, errf(http.StatusUnprocessableEntity, codeInvalidSchema, "Schema references are not supported by this registry")
	case strings.TrimSpace(req.Schema) == "":
		return req, errf(http.StatusUnprocessableEntity, codeInvalidSchema, "Empty schema")
	}
	return req, nil
}

func (a *api) register(r *http.Request) (any, error) {
	subject, err := subjectOf(r)
	if err != nil {
		return nil, err
	}
	req, err := readSchema(r)
	if err != nil {
		a.decide(subject, DecisionInvalid, err)
		return nil, err
	}
	sch, err := parse(req.Schema)
	if err != nil {
		err = errf(http.StatusUnprocessableEntity, codeInvalidSchema, "Invalid schema: %v", err)
		a.decide(subject, DecisionInvalid, err)
		return nil, err
	}
	v, created, err := a.st.register(r.Context(), subject, req.Schema, sch)
	var inc *errIncompatible
	if errors.As(err, &inc) {
		err = errf(http.StatusConflict, codeIncompatible, "%s", inc.Error())
		a.decide(subject, DecisionIncompatible, err)
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	if created {
		a.decide(subject, DecisionRegistered, nil, "id", v.ID, "version", v.Version)
	} else {
		a.decisions.WithLabelValues(DecisionExisting).Inc()
	}
	return map[string]int{"id": v.ID}, nil
}

// decide counts and logs one registration decision.
func (a *api) decide(subject, decision string, err error, attrs ...any) {
	a.decisions.WithLabelValues(decision).Inc()
	attrs = append(attrs, "subject", subject, "decision", decision)
	if err != nil {
		a.log.Warn("schema refused", append(attrs, "reason", err.Error())...)
		return
	}
	a.log.Info("schema registered", attrs...)
}

func (a *api) lookup(r *http.Request) (any, error) {
	subject, err := subjectOf(r)
	if err != nil {
		return nil, err
	}
	req, err := readSchema(r)
	if err != nil {
		return nil, err
	}
	if _, err := parse(req.Schema); err != nil {
		return nil, errf(http.StatusUnprocessableEntity, codeInvalidSchema, "Invalid schema: %v", err)
	}
	vs, err := a.liveVersions(r.Context(), subject)
	if err != nil {
		return nil, err
	}
	text := normalize(req.Schema)
	for _, v := range vs {
		if v.Schema == text {
			return v, nil
		}
	}
	return nil, errf(http.StatusNotFound, codeSchemaNotFound, "Schema not found")
}

func (a *api) deleteSubject(r *http.Request) (any, error) {
	subject, err := subjectOf(r)
	if err != nil {
		return nil, err
	}
	vs, err := a.st.deleteSubject(r.Context(), subject, r.URL.Query().Get("permanent") == "true")
	switch {
	case errors.Is(err, errSubjectNotFound):
		return nil, errf(http.StatusNotFound, codeSubjectNotFound, "Subject '%s' not found.", clip(subject))
	case errors.Is(err, errNotSoftDeleted):
		return nil, errf(http.StatusNotFound, codeSubjectNotSoftDeleted, "Subject '%s' was not deleted first before being permanently deleted", clip(subject))
	case errors.Is(err, errSubjectSoftDeleted):
		return nil, errf(http.StatusNotFound, codeSubjectSoftDeleted, "Subject '%s' was soft deleted. Set permanent=true to delete permanently", clip(subject))
	case err != nil:
		return nil, err
	}
	a.log.Info("subject deleted", "subject", subject, "versions", vs, "permanent", r.URL.Query().Get("permanent") == "true")
	return vs, nil
}

// deleteVersion soft-deletes a version ("latest" too), or removes a
// soft-deleted one with ?permanent=true, and answers its number.
func (a *api) deleteVersion(r *http.Request) (any, error) {
	permanent := r.URL.Query().Get("permanent") == "true"
	subject, err := subjectOf(r)
	if err != nil {
		return nil, err
	}
	version, err := versionOf(r)
	if err != nil {
		return nil, err
	}
	if version == -1 || !permanent {
		v, err := a.pickVersion(r)
		if err != nil {
			return nil, err
		}
		version = v.Version
	}
	err = a.st.deleteVersion(r.Context(), subject, version, permanent)
	switch {
	case errors.Is(err, errVersionNotFound):
		return nil, errf(http.StatusNotFound, codeVersionNotFound, "Version %d not found.", version)
	case errors.Is(err, errNotSoftDeleted):
		return nil, errf(http.StatusNotFound, 40407, "Subject '%s' Version %d was not deleted first before being permanently deleted", clip(subject), version)
	case err != nil:
		return nil, err
	}
	a.log.Info("version deleted", "subject", subject, "version", version, "permanent", permanent)
	return version, nil
}

// compatibility tests a schema against one version (under the subject's
// level, without transitivity) or, without a version, against what the
// level says (as a registration would).
func (a *api) compatibility(r *http.Request) (any, error) {
	subject, err := subjectOf(r)
	if err != nil {
		return nil, err
	}
	req, err := readSchema(r)
	if err != nil {
		return nil, err
	}
	sch, err := parse(req.Schema)
	if err != nil {
		return nil, errf(http.StatusUnprocessableEntity, codeInvalidSchema, "Invalid schema: %v", err)
	}
	level, err := a.st.effectiveLevel(r.Context(), subject)
	if err != nil {
		return nil, err
	}
	var against []Version
	if r.PathValue("version") == "" {
		vs, err := a.st.versions(r.Context(), subject)
		if err != nil {
			return nil, err
		}
		against = vs
	} else {
		v, err := a.pickVersion(r)
		if err != nil {
			return nil, err
		}
		against = []Version{v}
		level = Level(strings.TrimSuffix(string(level), "_TRANSITIVE"))
	}
	earlier := make([]avro.Schema, 0, len(against))
	for _, v := range against {
		s, err := parse(v.Schema)
		if err != nil {
			return nil, err
		}
		earlier = append(earlier, s)
	}
	msgs := check(level, sch, earlier)
	out := map[string]any{"is_compatible": len(msgs) == 0}
	if r.URL.Query().Get("verbose") == "true" {
		if msgs == nil {
			msgs = []string{}
		}
		out["messages"] = msgs
	}
	return out, nil
}

func (a *api) getConfig(r *http.Request) (any, error) {
	subject := r.PathValue("subject")
	if subject != "" {
		if _, err := subjectOf(r); err != nil {
			return nil, err
		}
		l, ok, err := a.st.level(r.Context(), subject)
		if err != nil {
			return nil, err
		}
		if ok {
			return map[string]Level{"compatibilityLevel": l}, nil
		}
		if r.URL.Query().Get("defaultToGlobal") != "true" {
			return nil, errf(http.StatusNotFound, codeSubjectLevelNotSet, "Subject '%s' does not have subject-level compatibility configured", clip(subject))
		}
	}
	l, err := a.st.effectiveLevel(r.Context(), "")
	if err != nil {
		return nil, err
	}
	return map[string]Level{"compatibilityLevel": l}, nil
}

func (a *api) putConfig(r *http.Request) (any, error) {
	subject := r.PathValue("subject")
	if subject != "" {
		if _, err := subjectOf(r); err != nil {
			return nil, err
		}
	}
	var req struct {
		Compatibility string `json:"compatibility"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&req); err != nil {
		return nil, errf(http.StatusUnprocessableEntity, codeInvalidLevel, "Invalid request body: %v", err)
	}
	l, err := ParseLevel(req.Compatibility)
	if err != nil {
		return nil, errf(http.StatusUnprocessableEntity, codeInvalidLevel, "Invalid compatibility level. %v", err)
	}
	if err := a.st.setLevel(r.Context(), subject, l); err != nil {
		return nil, err
	}
	scope := "global"
	if subject != "" {
		scope = subject
	}
	a.log.Info("compatibility level set", "scope", scope, "level", string(l))
	return map[string]Level{"compatibility": l}, nil
}

func (a *api) deleteConfig(r *http.Request) (any, error) {
	subject, err := subjectOf(r)
	if err != nil {
		return nil, err
	}
	l, ok, err := a.st.level(r.Context(), subject)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errf(http.StatusNotFound, codeSubjectLevelNotSet, "Subject '%s' does not have subject-level compatibility configured", clip(subject))
	}
	if err := a.st.deleteLevel(r.Context(), subject); err != nil {
		return nil, err
	}
	return map[string]Level{"compatibilityLevel": l}, nil
}
