package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// outcomer is an effect whose application has news worth a journal line:
// what the target decided (a schema registry's decision on a contract).
type outcomer interface{ outcome() string }

// contractEffect deploys a v2 rating contract on a webserver's producer
// side (POST /admin/contract) and heals by going back to v1.
type contractEffect struct {
	inj      *Injector
	instance string
	params   Params
	answer   string
}

// contractAnswer is the webserver's answer (services/webserver.ContractAnswer).
type contractAnswer struct {
	Contract string `json:"contract"`
	Format   string `json:"format"`
	Registry string `json:"registry"`
	Detail   string `json:"detail"`
}

func (e *contractEffect) apply(ctx context.Context) error {
	var a contractAnswer
	if err := e.post(ctx, http.MethodPost, map[string]string{"contract": e.params["change"]}, &a); err != nil {
		return err
	}
	switch a.Registry {
	case "":
		e.answer = fmt.Sprintf("%s deployed (%s: no registry decides; the consumer finds out per request)", a.Contract, a.Format)
	case "accepted":
		e.answer = fmt.Sprintf("%s deployed; the schema registry accepted its schema", a.Contract)
	default:
		e.answer = fmt.Sprintf("%s deployed; the schema registry %s its schema: %s", a.Contract, a.Registry, a.Detail)
	}
	return nil
}

func (e *contractEffect) outcome() string { return e.answer }

func (e *contractEffect) heal(ctx context.Context, _ bool) error {
	return e.post(ctx, http.MethodDelete, nil, nil)
}

func (e *contractEffect) post(ctx context.Context, method string, body, into any) error {
	addr, ok := e.inj.cfg.Targets.Services[e.instance]
	if !ok {
		return fmt.Errorf("%s has no HTTP endpoint", e.instance)
	}
	return callJSON(ctx, e.inj.http, method, "http://"+addr+"/admin/contract", body, into)
}

// compatibilityEffect sets a subject's level on the schema registry and
// puts back what was there before.
type compatibilityEffect struct {
	inj    *Injector
	params Params
	before string // "" when the subject had no level of its own
}

func (e *compatibilityEffect) url() (string, error) {
	if e.inj.cfg.Registry == "" {
		return "", fmt.Errorf("no schema registry configured")
	}
	return e.inj.cfg.Registry + "/config/" + url.PathEscape(e.params["subject"]), nil
}

func (e *compatibilityEffect) apply(ctx context.Context) error {
	u, err := e.url()
	if err != nil {
		return err
	}
	var cur struct {
		Level string `json:"compatibilityLevel"`
	}
	// Confluent answers 404 when the subject has no level of its own
	// (Apicurio answers the global one: then that is put back explicitly).
	if err := callJSON(ctx, e.inj.http, http.MethodGet, u, nil, &cur); err == nil {
		e.before = cur.Level
	}
	return callJSON(ctx, e.inj.http, http.MethodPut, u, map[string]string{"compatibility": e.params["level"]}, nil)
}

func (e *compatibilityEffect) outcome() string {
	was := e.before
	if was == "" {
		was = "the global level"
	}
	return fmt.Sprintf("%s compatibility set to %s (was %s)", e.params["subject"], e.params["level"], was)
}

func (e *compatibilityEffect) heal(ctx context.Context, _ bool) error {
	u, err := e.url()
	if err != nil {
		return err
	}
	if e.before == "" {
		return callJSON(ctx, e.inj.http, http.MethodDelete, u, nil, nil)
	}
	return callJSON(ctx, e.inj.http, http.MethodPut, u, map[string]string{"compatibility": e.before}, nil)
}

// callJSON sends one JSON request and decodes a 2xx answer into into; an
// error answer becomes an error carrying its message.
func callJSON(ctx context.Context, cl *http.Client, method, u string, body, into any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := cl.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode >= 300 {
		var m struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(msg, &m)
		if m.Error == "" {
			m.Error = m.Message
		}
		return fmt.Errorf("%s %s answered %s: %s", method, u, resp.Status, m.Error)
	}
	if into != nil {
		return json.Unmarshal(msg, into)
	}
	return nil
}
