package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/ratingslab/lab/lab/labtest"
)

// contractDoc loads docs/openapi/rpc.yaml with its servers pointed at a
// running lab's ratings-rpc and movies-rpc.
func contractDoc(t *testing.T, l *labtest.Lab) (*openapi3.T, routers.Router) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "..", "docs", "openapi", "rpc.yaml")
	doc, err := openapi3.NewLoader().LoadFromFile(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("%s is not a valid OpenAPI document: %v", path, err)
	}
	doc.Servers = openapi3.Servers{{URL: "http://" + l.Ports.RatingsRPC()}, {URL: "http://" + l.Ports.MoviesRPC()}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return doc, router
}

// rpcCall is one call to a running RPC service: whether the document
// accepts the request, what status the service answers, and (always) that
// the answer is what the document says it is.
type rpcCall struct {
	name        string
	service     string // ratings-rpc or movies-rpc
	method      string
	path        string
	body        any
	validReq    bool
	status      int
	operationID string
}

// The RPC variant's contract, docs/openapi/rpc.yaml, against the running
// services: every operation is called; valid requests are accepted and
// answered as documented; requests the document refuses (bad ids, pages,
// bodies, and every v2 contract change) are refused by the services too;
// every answer matches its documented schema and carries Api-Version: 1.
func TestRPCContractMatchesTheRunningServices(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	t.Parallel()
	l := labtest.Start(t, "--no-prometheus")
	doc, router := contractDoc(t, l)
	rate := func(id string, extra map[string]any) map[string]any {
		b := map[string]any{"request_id": id, "movie_id": 3, "rating_tenths": 75}
		for k, v := range extra {
			if v == nil {
				delete(b, k)
			} else {
				b[k] = v
			}
		}
		return b
	}
	calls := []rpcCall{
		{"rate", "ratings-rpc", "POST", "/ratings", rate("oa-1", nil), true, 201, "rate"},
		{"rate again", "ratings-rpc", "POST", "/ratings", rate("oa-1", nil), true, 200, "rate"},
		{"rate with a user", "ratings-rpc", "POST", "/ratings", rate("oa-2", map[string]any{"user_id": 9}), true, 201, "rate"},
		{"unknown movie", "ratings-rpc", "POST", "/ratings", rate("oa-3", map[string]any{"movie_id": 999999}), true, 422, "rate"},
		{"rating out of range", "ratings-rpc", "POST", "/ratings", rate("oa-4", map[string]any{"rating_tenths": 101}), false, 400, "rate"},
		{"no rating", "ratings-rpc", "POST", "/ratings", rate("oa-5", map[string]any{"rating_tenths": nil}), false, 400, "rate"},
		{"v2-add-optional", "ratings-rpc", "POST", "/ratings", rate("oa-6", map[string]any{"channel": "web"}), false, 400, "rate"},
		{"v2-rename-field", "ratings-rpc", "POST", "/ratings", rate("oa-7", map[string]any{"rating_tenths": nil, "score_tenths": 75}), false, 400, "rate"},
		{"v2-change-type", "ratings-rpc", "POST", "/ratings", rate("oa-8", map[string]any{"rating_tenths": "75"}), false, 400, "rate"},
		{"rated movies", "ratings-rpc", "GET", "/rated-movies?offset=0&limit=5", nil, true, 200, "ratedMovies"},
		{"rated movies, limit 0", "ratings-rpc", "GET", "/rated-movies?limit=0", nil, false, 400, "ratedMovies"},
		{"rated movie", "ratings-rpc", "GET", "/rated-movies/3", nil, true, 200, "ratedMovie"},
		{"rated movie unknown", "ratings-rpc", "GET", "/rated-movies/999999", nil, true, 404, "ratedMovie"},
		{"rated movie id not a number", "ratings-rpc", "GET", "/rated-movies/abc", nil, false, 400, "ratedMovie"},
		{"movies", "movies-rpc", "GET", "/movies?limit=3", nil, true, 200, "movies"},
		{"movies, limit too high", "movies-rpc", "GET", "/movies?limit=1001", nil, false, 400, "movies"},
		{"movie", "movies-rpc", "GET", "/movies/1", nil, true, 200, "movie"},
		{"movie unknown", "movies-rpc", "GET", "/movies/999999", nil, true, 404, "movie"},
		{"movie id 0", "movies-rpc", "GET", "/movies/0", nil, false, 400, "movie"},
	}
	called := map[string]bool{}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) { called[c.operationID] = true; checkRPCCall(t, l, router, c) })
	}
	// A dependency outage is documented too: 503 with retry_after, and the
	// cached list.
	l.Action("movies-rpc", "stop")
	for _, c := range []rpcCall{
		{"rate, movies-rpc down", "ratings-rpc", "POST", "/ratings", rate("oa-9", nil), true, 503, "rate"},
		{"rated movies from the cache", "ratings-rpc", "GET", "/rated-movies", nil, true, 200, "ratedMovies"},
	} {
		t.Run(c.name, func(t *testing.T) { checkRPCCall(t, l, router, c) })
	}
	l.Action("movies-rpc", "start")

	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if !called[op.OperationID] {
				t.Errorf("%s %s (%s) is documented but not exercised", method, path, op.OperationID)
			}
		}
	}
}

func checkRPCCall(t *testing.T, l *labtest.Lab, router routers.Router, c rpcCall) {
	t.Helper()
	addr := map[string]string{"ratings-rpc": l.Ports.RatingsRPC(), "movies-rpc": l.Ports.MoviesRPC()}[c.service]
	var body []byte
	if c.body != nil {
		body, _ = json.Marshal(c.body)
	}
	req, _ := http.NewRequest(c.method, "http://"+addr+c.path, bytes.NewReader(body))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	route, params, err := router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s is not in the document: %v", c.method, c.path, err)
	}
	if route.Operation.OperationID != c.operationID {
		t.Fatalf("%s %s routes to %s, want %s", c.method, c.path, route.Operation.OperationID, c.operationID)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route}
	reqErr := openapi3filter.ValidateRequest(context.Background(), in)
	if (reqErr == nil) != c.validReq {
		t.Errorf("the document %s this request (want %s): %v", map[bool]string{true: "accepts", false: "refuses"}[reqErr == nil],
			map[bool]string{true: "accepted", false: "refused"}[c.validReq], reqErr)
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != c.status {
		t.Errorf("%s %s answered %d %.300s, want %d", c.method, c.path, resp.StatusCode, got, c.status)
	}
	if v := resp.Header.Get("Api-Version"); v != "1" {
		t.Errorf("Api-Version header %q, want 1", v)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	out.SetBodyBytes(got)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("the answer %d %.300s does not match the document: %.600v", resp.StatusCode, got, err)
	}
	if !slices.Contains([]int{200, 201}, resp.StatusCode) {
		var e struct{ Error string }
		if json.Unmarshal(got, &e) != nil || e.Error == "" {
			t.Errorf("error answer without a message: %s", got)
		}
	}
}
