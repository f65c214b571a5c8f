package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Admin endpoints of the parts (services/serve and the parts' admin.go).
//
//	POST   /admin/faults    {"error_rate":0.2,"latency":"250ms"}  replaces the set; DELETE heals
//	POST   /admin/slow-db   {"delay":"500ms"}                     DELETE heals   (movies-rpc, movies-connect)
//	POST   /admin/throttle  {"delay":"1s"}                        DELETE heals   (ratings-stream)
const (
	adminFaults   = "/admin/faults"
	adminSlowDB   = "/admin/slow-db"
	adminThrottle = "/admin/throttle"
)

// serviceEffect sets an in-service fault through a part's admin endpoint.
// error_rate and handler_latency share one endpoint that takes the whole
// set, so each change posts the merge of both as currently active.
type serviceEffect struct {
	inj      *Injector
	instance string
	kind     string
	params   Params
}

func (e *serviceEffect) apply(ctx context.Context) error {
	e.inj.svcMu.Lock()
	defer e.inj.svcMu.Unlock()
	switch e.kind {
	case "error_rate", "handler_latency":
		return e.postFaultSet(ctx)
	case "slow_db":
		return e.call(ctx, http.MethodPost, adminSlowDB, map[string]string{"delay": e.params.Duration("delay").String()})
	case "throttle":
		return e.call(ctx, http.MethodPost, adminThrottle, map[string]string{"delay": e.params.Duration("delay").String()})
	}
	return fmt.Errorf("unknown service fault %s", e.kind)
}

func (e *serviceEffect) heal(ctx context.Context, _ bool) error {
	e.inj.svcMu.Lock()
	defer e.inj.svcMu.Unlock()
	switch e.kind {
	case "error_rate", "handler_latency":
		return e.postFaultSet(ctx)
	case "slow_db":
		return e.call(ctx, http.MethodDelete, adminSlowDB, nil)
	case "throttle":
		return e.call(ctx, http.MethodDelete, adminThrottle, nil)
	}
	return nil
}

// postFaultSet posts the merge of the instance's active error_rate and
// handler_latency faults (a healed one has already left the active set).
func (e *serviceEffect) postFaultSet(ctx context.Context) error {
	var rate float64
	var latency time.Duration
	e.inj.mu.Lock()
	for _, r := range e.inj.running {
		if r.Target != e.instance {
			continue
		}
		switch r.kind.Name {
		case "error_rate":
			rate = r.Params.Float("rate")
		case "handler_latency":
			latency = r.Params.Duration("latency")
		}
	}
	e.inj.mu.Unlock()
	if rate == 0 && latency == 0 {
		return e.call(ctx, http.MethodDelete, adminFaults, nil)
	}
	return e.call(ctx, http.MethodPost, adminFaults, map[string]any{"error_rate": rate, "latency": latency.String()})
}

// call sends one admin request and turns an error answer into an error
// carrying the part's own message.
func (e *serviceEffect) call(ctx context.Context, method, path string, body any) error {
	addr, ok := e.inj.cfg.Targets.Services[e.instance]
	if !ok {
		return fmt.Errorf("%s has no HTTP endpoint", e.instance)
	}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.inj.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", e.instance, path, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed:
		return fmt.Errorf("%s has no %s %s admin endpoint (answered %s)", e.instance, method, path, resp.Status)
	case resp.StatusCode >= 300:
		var m struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(msg, &m) == nil && m.Error != "" {
			return fmt.Errorf("%s %s: %s", e.instance, path, m.Error)
		}
		return fmt.Errorf("%s %s answered %s", e.instance, path, resp.Status)
	}
	return nil
}
