package registry_test

// The contract suite: one table of Confluent Schema Registry API calls,
// run against the embedded registry and against Apicurio Registry's
// Confluent-compatible API (a real registry, started once from
// `make apicurio`). Both must give the same answers; where Apicurio
// deliberately differs from Confluent's documented API, the step says so
// (apicurio: ...) and the embedded registry follows Confluent:
//
//   - an unknown compatibility level: Confluent 422 (42203); Apicurio 500
//     (error_code 0);
//   - a version that is not a number: Confluent 422 (42202); Apicurio 404
//     (40402);
//   - GET /config/{subject} with no subject level: Confluent 404 (40408)
//     unless ?defaultToGlobal=true; Apicurio answers the global level;
//   - a schema that is JSON but not a valid Avro schema: Apicurio accepts
//     what its parser accepts; the suite only uses text that is not JSON.
//   - PUT /config/{subject} for a subject that has no version yet:
//     Confluent sets it; Apicurio 3.0.9 answered 404 (40401) to the first
//     such call of a run and 200 to a later one, so the suite (and the
//     lab) registers first, then sets a subject's level;
//   - the default global level: Confluent BACKWARD, Apicurio NONE; the lab
//     sets it explicitly at `lab up` (--compatibility), so both start alike.
//
// Ids are compared by their relations (same schema, same id), never by
// value: each registry numbers its own schemas.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/registry/registrytest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	registrytest.StopApicurio()
	os.Exit(code)
}

// Schemas of the compatibility table: a record R with fields a (long),
// b (string, with or without a default), c (long, no default).
const (
	schemaA      = `{"type":"record","name":"R","fields":[{"name":"a","type":"long"}]}`
	schemaABdef  = `{"type":"record","name":"R","fields":[{"name":"a","type":"long"},{"name":"b","type":"string","default":"x"}]}`
	schemaAB     = `{"type":"record","name":"R","fields":[{"name":"a","type":"long"},{"name":"b","type":"string"}]}`
	schemaAC     = `{"type":"record","name":"R","fields":[{"name":"a","type":"long"},{"name":"c","type":"long"}]}`
	schemaC      = `{"type":"record","name":"R","fields":[{"name":"c","type":"long"}]}`
	schemaOther  = `{"type":"record","name":"Other","fields":[{"name":"z","type":"string"}]}`
	schemaBroken = `{"type":"record","name":`
	schemaL      = `{"type":"record","name":"L","fields":[{"name":"a","type":"long"}]}`
	schemaLdef   = `{"type":"record","name":"L","fields":[{"name":"a","type":"long"},{"name":"b","type":"string","default":"x"}]}`
)

// step is one API call and the answer both registries must give.
type step struct {
	method, path string // path may hold {s} (the scenario's subject) and {id:name}
	body         any
	status       int
	code         int // error_code, for status >= 400
	// want, when set, is compared with the answer's JSON (a subset: every
	// key given must match; ids are written {id:name}).
	want string
	// saveID records the answer's "id" under this name.
	saveID string
	// apicurio, when set, is what Apicurio answers instead, and why.
	apicurio *deviation
}

type deviation struct {
	status, code int
	why          string
}

func register(schema string) map[string]string { return map[string]string{"schema": schema} }
func level(l string) map[string]string         { return map[string]string{"compatibility": l} }

// compatScenario registers first, then a compatible change (200), then an
// incompatible one (409) under level.
func compatScenario(lvl string, first, compatible, incompatible string) []step {
	return []step{
		{method: "POST", path: "/subjects/{s}/versions", body: register(first), status: 200},
		{method: "PUT", path: "/config/{s}", body: level(lvl), status: 200},
		{method: "POST", path: "/compatibility/subjects/{s}/versions/latest", body: register(compatible), status: 200, want: `{"is_compatible":true}`},
		{method: "POST", path: "/subjects/{s}/versions", body: register(compatible), status: 200},
		// Without a version the check is against what the level says
		// (every version, for the transitive levels).
		{method: "POST", path: "/compatibility/subjects/{s}/versions", body: register(incompatible), status: 200, want: `{"is_compatible":false}`},
		{method: "POST", path: "/subjects/{s}/versions", body: register(incompatible), status: 409, code: 409},
		{method: "GET", path: "/subjects/{s}/versions", status: 200, want: `[1,2]`},
	}
}

var scenarios = []struct {
	name  string
	steps []step
}{
	// Every level with a compatible and an incompatible change. The
	// transitive levels differ from their plain forms only against versions
	// older than the latest, so their incompatible change is compatible
	// with the latest version and not with the first.
	{"NONE", compatScenario("NONE", schemaA, schemaOther, schemaOther)[:4]},
	{"BACKWARD", compatScenario("BACKWARD", schemaA, schemaABdef, schemaAC)},
	{"BACKWARD plain accepts what only an older version breaks", []step{
		{method: "POST", path: "/subjects/{s}/versions", body: register(schemaA), status: 200},
		{method: "PUT", path: "/config/{s}", body: level("BACKWARD"), status: 200},
		{method: "POST", path: "/subjects/{s}/versions", body: register(schemaABdef), status: 200},
		{method: "POST", path: "/subjects/{s}/versions", body: register(schemaAB), status: 200},
	}},
	{"BACKWARD_TRANSITIVE", compatScenario("BACKWARD_TRANSITIVE", schemaA, schemaABdef, schemaAB)},
	{"FORWARD", compatScenario("FORWARD", schemaA, schemaAC, schemaC)},
	{"FORWARD plain accepts what only an older version breaks", []step{
		{method: "POST", path: "/subjects/{s}/versions", body: register(schemaAB), status: 200},
		{method: "PUT", path: "/config/{s}", body: level("FORWARD"), status: 200},
		{method: "POST", path: "/subjects/{s}/versions", body: register(schemaABdef), status: 200},
		{method: "POST", path: "/subjects/{s}/versions", body: register(schemaA), status: 200},
	}},
	{"FORWARD_TRANSITIVE", compatScenario("FORWARD_TRANSITIVE", schemaAB, schemaABdef, schemaA)},
	{"FULL", compatScenario("FULL", schemaA, schemaABdef, schemaAC)},
	{"FULL_TRANSITIVE", compatScenario("FULL_TRANSITIVE", schemaA, schemaABdef, schemaAB)},

	{"register, read back, look up", []step{
		{method: "POST", path: "/subjects/{s}/versions", body: register(schemaL), status: 200, saveID: "a"},
		{method: "PUT", path: "/config/{s}", body: level("BACKWARD"), status: 200},
		{method: "POST", path: "/subjects/{s}/versions", body: register(schemaL), status: 200, want: `{"id":{id:a}}`},
		{method: "POST", path: "/subjects/{s}/versions", body: register(schemaLdef), status: 200, saveID: "ab"},
		{method: "GET", path: "/subjects/{s}/versions", status: 200, want: `[1,2]`},
		{method: "GET", path: "/subjects/{s}/versions/1", status: 200, want: `{"subject":"{s}","version":1,"id":{id:a},"schema":` + quote(schemaL) + `}`},
		{method: "GET", path: "/subjects/{s}/versions/latest", status: 200, want: `{"subject":"{s}","version":2,"id":{id:ab}}`},
		{method: "GET", path: "/schemas/ids/{id:ab}", status: 200, want: `{"schema":` + quote(schemaLdef) + `}`},
		{method: "GET", path: "/schemas/ids/{id:a}/versions", status: 200, want: `[{"subject":"{s}","version":1}]`},
		{method: "POST", path: "/subjects/{s}", body: register(schemaLdef), status: 200, want: `{"subject":"{s}","version":2,"id":{id:ab}}`},
		{method: "POST", path: "/subjects/{s}", body: register(schemaOther), status: 404, code: 40403},
		{method: "GET", path: "/subjects", status: 200},
	}},
	{"one schema, one id, in every subject", []step{
		{method: "POST", path: "/subjects/{s}/versions", body: register(schemaOther), status: 200, saveID: "x"},
		{method: "POST", path: "/subjects/{s}-twin/versions", body: register(schemaOther), status: 200, want: `{"id":{id:x}}`},
	}},
	{"per-subject level overrides the global one", []step{
		{method: "POST", path: "/subjects/{s}/versions", body: register(schemaA), status: 200},
		{method: "PUT", path: "/config/{s}", body: level("NONE"), status: 200},
		{method: "GET", path: "/config/{s}", status: 200, want: `{"compatibilityLevel":"NONE"}`},
		{method: "POST", path: "/subjects/{s}/versions", body: register(schemaC), status: 200},
		{method: "PUT", path: "/config/{s}", body: level("FULL"), status: 200},
		{method: "GET", path: "/config/{s}", status: 200, want: `{"compatibilityLevel":"FULL"}`},
		// Registering a schema the subject already holds answers its id
		// whatever the level; a new one is checked.
		{method: "POST", path: "/subjects/{s}/versions", body: register(schemaA), status: 200},
		{method: "POST", path: "/subjects/{s}/versions", body: register(schemaAB), status: 409, code: 409},
		{method: "GET", path: "/config/{s}?defaultToGlobal=true", status: 200},
	}},
	{"a deleted version no longer counts", []step{
		{method: "POST", path: "/subjects/{s}/versions", body: register(schemaA), status: 200},
		{method: "PUT", path: "/config/{s}", body: level("NONE"), status: 200},
		{method: "POST", path: "/subjects/{s}/versions", body: register(schemaC), status: 200},
		{method: "PUT", path: "/config/{s}", body: level("BACKWARD"), status: 200},
		{method: "POST", path: "/subjects/{s}/versions", body: register(schemaABdef), status: 409, code: 409},
		{method: "DELETE", path: "/subjects/{s}/versions/latest", status: 200, want: `2`},
		{method: "GET", path: "/subjects/{s}/versions", status: 200, want: `[1]`},
		{method: "POST", path: "/subjects/{s}/versions", body: register(schemaABdef), status: 200},
		{method: "GET", path: "/subjects/{s}/versions", status: 200, want: `[1,3]`},
	}},
	{"bad input", []step{
		{method: "GET", path: "/subjects/{s}/versions", status: 404, code: 40401},
		{method: "GET", path: "/subjects/{s}/versions/1", status: 404, code: 40401},
		{method: "POST", path: "/subjects/{s}", body: register(schemaA), status: 404, code: 40401},
		{method: "POST", path: "/subjects/{s}/versions", body: register(schemaBroken), status: 422, code: 42201},
		{method: "POST", path: "/subjects/{s}/versions", body: register(schemaA), status: 200},
		{method: "GET", path: "/subjects/{s}/versions/7", status: 404, code: 40402},
		{method: "GET", path: "/schemas/ids/987654", status: 404, code: 40403},
		{method: "GET", path: "/subjects/{s}/versions/abc", status: 422, code: 42202,
			apicurio: &deviation{404, 40402, "Apicurio reads any version text as a version to look up"}},
		{method: "PUT", path: "/config/{s}", body: level("SIDEWAYS"), status: 422, code: 42203,
			apicurio: &deviation{500, 0, "Apicurio answers an unknown level with an internal error"}},
		{method: "GET", path: "/config/{s}", status: 404, code: 40408,
			apicurio: &deviation{200, 0, "Apicurio falls back to the global level without ?defaultToGlobal=true"}},
	}},
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

func TestContractEmbedded(t *testing.T) { runContract(t, "embedded", registrytest.Embedded(t)) }

func TestContractApicurio(t *testing.T) { runContract(t, "apicurio", registrytest.Apicurio(t)) }

func runContract(t *testing.T, target, base string) {
	run := fmt.Sprintf("c%d", rand.Uint32()) // subjects apart from other runs on a shared registry
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			subject := run + "-" + strings.NewReplacer(" ", "-", ",", "").Replace(strings.ToLower(sc.name))
			ids := map[string]string{}
			for i, st := range sc.steps {
				status, code := st.status, st.code
				if st.apicurio != nil && target == "apicurio" {
					status, code = st.apicurio.status, st.apicurio.code
				}
				got, body := call(t, base, st.method, expand(st.path, subject, ids), st.body)
				if got != status {
					t.Fatalf("step %d %s %s: status %d, want %d; body %s", i+1, st.method, st.path, got, status, body)
				}
				var answer map[string]any
				_ = json.Unmarshal(body, &answer)
				if status >= 400 {
					if c, _ := answer["error_code"].(float64); int(c) != code {
						t.Fatalf("step %d %s %s: error_code %v, want %d; body %s", i+1, st.method, st.path, answer["error_code"], code, body)
					}
					if m, _ := answer["message"].(string); m == "" && code != 0 {
						t.Fatalf("step %d: error without a message: %s", i+1, body)
					}
				}
				if st.saveID != "" {
					ids[st.saveID] = fmt.Sprint(answer["id"])
				}
				if st.want != "" {
					var want any
					if err := json.Unmarshal([]byte(expand(st.want, subject, ids)), &want); err != nil {
						t.Fatalf("step %d: bad want %s: %v", i+1, st.want, err)
					}
					var have any
					_ = json.Unmarshal(body, &have)
					if msg := subset(want, have); msg != "" {
						t.Fatalf("step %d %s %s: %s\n got %s", i+1, st.method, st.path, msg, body)
					}
				}
			}
		})
	}
}

func expand(s, subject string, ids map[string]string) string {
	s = strings.ReplaceAll(s, "{s}", subject)
	for k, v := range ids {
		s = strings.ReplaceAll(s, "{id:"+k+"}", v)
	}
	return s
}

func call(t *testing.T, base, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	cl := &http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b
}

// subset says how have fails to contain want ("" when it does). Strings
// holding a schema are compared as JSON, so formatting does not matter.
func subset(want, have any) string {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return fmt.Sprintf("want an object, got %T", have)
		}
		for k, wv := range w {
			if msg := subset(wv, h[k]); msg != "" {
				return k + ": " + msg
			}
		}
		return ""
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			return fmt.Sprintf("want %d items, got %v", len(w), have)
		}
		for i := range w {
			if msg := subset(w[i], h[i]); msg != "" {
				return fmt.Sprintf("[%d]: %s", i, msg)
			}
		}
		return ""
	case string:
		hs, _ := have.(string)
		if sameJSON(w, hs) {
			return ""
		}
		return fmt.Sprintf("want %q, got %q", w, hs)
	default:
		if fmt.Sprint(want) == fmt.Sprint(have) {
			return ""
		}
		return fmt.Sprintf("want %v, got %v", want, have)
	}
}

func sameJSON(a, b string) bool {
	if a == b {
		return true
	}
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}
