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

// Admin endpoints of the parts (services/lib/serve and the parts' admin.go);
// the catalog's adminEndpoint entries say which fault uses which.
//
//	POST   /admin/faults    {"error_rate":0.2,"latency":"250ms"}  replaces the set; DELETE heals
//	POST   /admin/slow-db   {"delay":"500ms"}                     DELETE heals   (movies-rpc, movies-connect)
//	POST   /admin/throttle  {"delay":"1s"}                        DELETE heals   (ratings-stream)
const (
	adminFaults   = "/admin/faults"
	adminSlowDB   = "/admin/slow-db"
	adminThrottle = "/admin/throttle"
)

// adminEndpoint is a service fault set through the part's admin endpoint:
// POST Path {Field: <Param's value>} sets it, DELETE Path heals it.
type adminEndpoint struct {
	Path string
	// Field of the posted JSON object carries parameter Param (a duration
	// as Go text such as "500ms", a number as a JSON number).
	Field, Param string
	// Shared: the endpoint holds a set of faults (every fault of the
	// catalog with this Path) and takes the whole set at once, so each
	// change posts the merge of the part's active ones (zero for the
	// others), and DELETE when all are zero.
	Shared bool
	// Shows is how `lab status` describes the fault when the part reports
	// it in force (GET Path) but the lab did not set it; %v is the value.
	Shows string
}

func (a adminEndpoint) effectOn(inj *Injector, rec *record, _ time.Duration) effect {
	return &serviceEffect{inj: inj, instance: rec.Target, kind: rec.kind, admin: a, params: rec.Params}
}

// value is the JSON value of the fault's parameter in ps (zero when ps
// lacks it).
func (a adminEndpoint) value(k Kind, ps Params) (v any, zero bool) {
	p, _ := k.Param(a.Param)
	switch p.Type {
	case ParamDuration:
		d := ps.Duration(a.Param)
		return d.String(), d == 0
	case ParamInt, ParamFloat, ParamFraction:
		f := ps.Float(a.Param)
		return f, f == 0
	}
	return ps[a.Param], ps[a.Param] == ""
}

// serviceEffect sets an in-service fault through a part's admin endpoint.
type serviceEffect struct {
	inj      *Injector
	instance string
	kind     Kind
	admin    adminEndpoint
	params   Params
}

func (e *serviceEffect) apply(ctx context.Context) error {
	e.inj.svcMu.Lock()
	defer e.inj.svcMu.Unlock()
	if e.admin.Shared {
		return e.postSet(ctx)
	}
	v, _ := e.admin.value(e.kind, e.params)
	return e.call(ctx, http.MethodPost, e.admin.Path, map[string]any{e.admin.Field: v})
}

func (e *serviceEffect) heal(ctx context.Context, _ bool) error {
	e.inj.svcMu.Lock()
	defer e.inj.svcMu.Unlock()
	if e.admin.Shared {
		return e.postSet(ctx)
	}
	return e.call(ctx, http.MethodDelete, e.admin.Path, nil)
}

// postSet posts the merge of the instance's active faults that share the
// endpoint (a healed one has already left the active set), or DELETE when
// none is in force.
func (e *serviceEffect) postSet(ctx context.Context) error {
	active := map[string]Params{}
	e.inj.mu.Lock()
	for _, r := range e.inj.running {
		if r.Target == e.instance {
			active[r.kind.Name] = r.Params
		}
	}
	e.inj.mu.Unlock()
	body := map[string]any{}
	set := false
	for _, k := range kinds {
		a, ok := k.act.(adminEndpoint)
		if !ok || !a.Shared || a.Path != e.admin.Path {
			continue
		}
		v, zero := a.value(k, active[k.Name])
		body[a.Field] = v
		set = set || !zero
	}
	if !set {
		return e.call(ctx, http.MethodDelete, e.admin.Path, nil)
	}
	return e.call(ctx, http.MethodPost, e.admin.Path, body)
}

// call sends one admin request and turns an error answer into an error
// carrying the part's own message.
func (e *serviceEffect) call(ctx context.Context, method, path string, body any) error {
	addr, ok := e.inj.cfg.Targets.Services[e.instance]
	if !ok {
		return fmt.Errorf("%s has no HTTP endpoint", e.instance)
	}
	code, msg, err := adminCall(ctx, e.inj.http, addr, method, path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", e.instance, path, err)
	}
	if code == http.StatusNotFound || code == http.StatusMethodNotAllowed {
		return fmt.Errorf("%s has no %s %s admin endpoint (answered %d %s)", e.instance, method, path, code, http.StatusText(code))
	}
	return answerError(e.instance, path, code, msg)
}

// adminCall sends one JSON request to a part's admin endpoint and returns
// the status and (the start of) the answer.
func adminCall(ctx context.Context, client *http.Client, addr, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, msg, nil
}

// answerError is nil for a 2xx answer, else an error with the part's own
// message ({"error": ...}) when it gave one.
func answerError(instance, path string, code int, msg []byte) error {
	if code < 300 {
		return nil
	}
	var m struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(msg, &m) == nil && m.Error != "" {
		return fmt.Errorf("%s %s: %s", instance, path, m.Error)
	}
	return fmt.Errorf("%s %s answered %d %s", instance, path, code, http.StatusText(code))
}

// reapplyServiceFaults sets a restarted part's in-service faults again: the
// new process starts without them, while the injector still lists them as
// active. It waits (bounded) for the part's admin endpoint to answer.
func (inj *Injector) reapplyServiceFaults(instance string) {
	var effects []*serviceEffect
	inj.mu.Lock()
	for _, r := range inj.running {
		if se, ok := r.effect.(*serviceEffect); ok && r.ready && r.Target == instance {
			effects = append(effects, se)
		}
	}
	inj.mu.Unlock()
	if len(effects) == 0 {
		return
	}
	addr, ok := inj.cfg.Targets.Services[instance]
	if !ok {
		return
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+adminFaults, nil)
		resp, err := inj.http.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			inj.log.Warn("restarted part never answered; its in-service faults are not set again", "part", instance)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, e := range effects {
		if !inj.stillActive(e) {
			continue // healed while the part was starting
		}
		if err := e.apply(ctx); err != nil {
			inj.log.Warn("re-applying an in-service fault after a restart failed", "part", instance, "fault", e.kind.Name, "err", err)
		} else {
			inj.log.Info("in-service fault set again after a restart", "part", instance, "fault", e.kind.Name)
		}
	}
}

// stillActive reports whether an effect's fault is still in force.
func (inj *Injector) stillActive(e effect) bool {
	inj.mu.Lock()
	defer inj.mu.Unlock()
	for _, r := range inj.running {
		if r.effect == e {
			return true
		}
	}
	return false
}
