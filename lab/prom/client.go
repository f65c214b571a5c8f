package prom

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// httpClient bounds every API call even when the caller's ctx has no
// deadline.
var httpClient = &http.Client{Timeout: 30 * time.Second}

// Point is one sample.
type Point struct {
	Time  time.Time
	Value float64
}

// Series is one labelled series of a result: one point for an instant
// vector or a scalar, many for a range query.
type Series struct {
	Labels map[string]string
	Points []Point
}

// Result is what a query returned.
type Result struct {
	Type     string // vector, matrix, scalar or string
	Series   []Series
	Warnings []string
}

// Empty reports whether the result holds no sample at all.
func (r Result) Empty() bool {
	for _, s := range r.Series {
		if len(s.Points) > 0 {
			return false
		}
	}
	return true
}

// APIError is an error answer of the Prometheus HTTP API; Type is its
// errorType (bad_data for a query that does not parse).
type APIError struct {
	StatusCode int
	Type       string
	Message    string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("prometheus: %s (%s, HTTP %d)", e.Message, e.Type, e.StatusCode)
}

// IsBadQuery reports whether err says the query itself is wrong (as opposed
// to Prometheus being unreachable or overloaded).
func IsBadQuery(err error) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.Type == "bad_data"
}

// Query runs an instant query at the current time (GET-equivalent POST to
// /api/v1/query, so long dashboard queries fit).
func Query(ctx context.Context, baseURL, promql string) (Result, error) {
	var data queryData
	if err := call(ctx, baseURL, "/api/v1/query", url.Values{"query": {promql}}, &data); err != nil {
		return Result{}, err
	}
	return data.result()
}

// QueryRange runs a range query, as a Grafana panel does.
func QueryRange(ctx context.Context, baseURL, promql string, start, end time.Time, step time.Duration) (Result, error) {
	if step <= 0 {
		return Result{}, fmt.Errorf("step %v: must be positive", step)
	}
	form := url.Values{
		"query": {promql},
		"start": {formatTime(start)},
		"end":   {formatTime(end)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	}
	var data queryData
	if err := call(ctx, baseURL, "/api/v1/query_range", form, &data); err != nil {
		return Result{}, err
	}
	return data.result()
}

// Parse checks promql with the parser of the Prometheus that answers at
// baseURL (/api/v1/format_query, Prometheus 2.38+) and returns the query as
// that version formats it. A query that does not parse yields an error for
// which IsBadQuery is true.
func Parse(ctx context.Context, baseURL, promql string) (string, error) {
	var formatted string
	if err := call(ctx, baseURL, "/api/v1/format_query", url.Values{"query": {promql}}, &formatted); err != nil {
		return "", err
	}
	return formatted, nil
}

// LabelValues lists the values of label among the series matching the
// selector match between start and end (/api/v1/label/<label>/values), as
// Grafana's label_values(match, label) does for a template variable.
func LabelValues(ctx context.Context, baseURL, label, match string, start, end time.Time) ([]string, error) {
	form := url.Values{
		"match[]": {match},
		"start":   {formatTime(start)},
		"end":     {formatTime(end)},
	}
	var values []string
	if err := get(ctx, baseURL, "/api/v1/label/"+url.PathEscape(label)+"/values", form, &values); err != nil {
		return nil, err
	}
	return values, nil
}

// Ready asks once whether Prometheus is ready to serve queries (GET
// /-/ready); callers poll it with their own deadline.
func Ready(ctx context.Context, baseURL string) error {
	return plain(ctx, http.MethodGet, strings.TrimRight(baseURL, "/")+"/-/ready")
}

// Reload makes Prometheus re-read its config file (needs --web.enable-lifecycle,
// which Args sets), e.g. after the parts' replica counts changed.
func Reload(ctx context.Context, baseURL string) error {
	return plain(ctx, http.MethodPost, strings.TrimRight(baseURL, "/")+"/-/reload")
}

func plain(ctx context.Context, method, u string) error {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, u, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// envelope is the API's answer format.
type envelope struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Warnings  []string        `json:"warnings"`
}

// call POSTs form to an API endpoint (queries can be long) and decodes
// the answer's data into data.
func call(ctx context.Context, baseURL, path string, form url.Values, data any) error {
	u := strings.TrimRight(baseURL, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(req, u, data)
}

// get is call for endpoints that answer GET only (label values).
func get(ctx context.Context, baseURL, path string, params url.Values, data any) error {
	u := strings.TrimRight(baseURL, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+"?"+params.Encode(), nil)
	if err != nil {
		return err
	}
	return do(req, u, data)
}

func do(req *http.Request, u string, data any) error {
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s: reading answer: %w", u, err)
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("%s: HTTP %d, not an API answer: %.200s", u, resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	if env.Status != "success" {
		return &APIError{StatusCode: resp.StatusCode, Type: env.ErrorType, Message: env.Error}
	}
	if err := json.Unmarshal(env.Data, data); err != nil {
		return fmt.Errorf("%s: decoding data: %w", u, err)
	}
	if qd, ok := data.(*queryData); ok {
		qd.warnings = env.Warnings
	}
	return nil
}

type queryData struct {
	ResultType string          `json:"resultType"`
	Result     json.RawMessage `json:"result"`
	warnings   []string
}

// sample is [unix seconds, "value"].
type sample [2]json.RawMessage

func (s sample) point() (Point, error) {
	var ts float64
	if err := json.Unmarshal(s[0], &ts); err != nil {
		return Point{}, fmt.Errorf("sample time: %w", err)
	}
	var v string
	if err := json.Unmarshal(s[1], &v); err != nil {
		return Point{}, fmt.Errorf("sample value: %w", err)
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return Point{}, fmt.Errorf("sample value %q: %w", v, err)
	}
	sec, frac := math.Modf(ts)
	return Point{Time: time.Unix(int64(sec), int64(frac*1e9)), Value: f}, nil
}

func (d queryData) result() (Result, error) {
	r := Result{Type: d.ResultType, Warnings: d.warnings}
	switch d.ResultType {
	case "vector":
		var vs []struct {
			Metric map[string]string `json:"metric"`
			Value  sample            `json:"value"`
		}
		if err := json.Unmarshal(d.Result, &vs); err != nil {
			return Result{}, fmt.Errorf("vector result: %w", err)
		}
		for _, v := range vs {
			p, err := v.Value.point()
			if err != nil {
				return Result{}, err
			}
			r.Series = append(r.Series, Series{Labels: v.Metric, Points: []Point{p}})
		}
	case "matrix":
		var ms []struct {
			Metric map[string]string `json:"metric"`
			Values []sample          `json:"values"`
		}
		if err := json.Unmarshal(d.Result, &ms); err != nil {
			return Result{}, fmt.Errorf("matrix result: %w", err)
		}
		for _, m := range ms {
			s := Series{Labels: m.Metric}
			for _, v := range m.Values {
				p, err := v.point()
				if err != nil {
					return Result{}, err
				}
				s.Points = append(s.Points, p)
			}
			r.Series = append(r.Series, s)
		}
	case "scalar":
		var v sample
		if err := json.Unmarshal(d.Result, &v); err != nil {
			return Result{}, fmt.Errorf("scalar result: %w", err)
		}
		p, err := v.point()
		if err != nil {
			return Result{}, err
		}
		r.Series = []Series{{Labels: map[string]string{}, Points: []Point{p}}}
	case "string":
		// A string literal query has no series to check; keep it empty.
	default:
		return Result{}, fmt.Errorf("unknown result type %q", d.ResultType)
	}
	return r, nil
}

func formatTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixNano())/1e9, 'f', 3, 64)
}
