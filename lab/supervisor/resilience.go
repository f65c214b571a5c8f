package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/ratingslab/lab/services/lib/breaker"
	"github.com/ratingslab/lab/services/lib/serve"
	"github.com/ratingslab/lab/services/lib/variantname"
)

// handleResilience switches the RPC variant's breakers and retries at
// runtime (POST /v1/resilience, a breaker.Resilience body): every RPC part
// with dependencies gets the change on its admin listener at once, and its
// command line is changed too, so a part restarted later (ratings-crash)
// keeps it. lab.json's options follow, so `lab chaos` checks an
// experiment's `requires` against what runs. No lab down/up in between.
func (s *Supervisor) handleResilience(w http.ResponseWriter, r *http.Request) {
	var req breaker.Resilience
	if err := serve.DecodeJSON(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if err := req.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	s.resilienceMu.Lock()
	defer s.resilienceMu.Unlock()
	out := map[string]any{}
	for _, p := range s.procs {
		if p.variant != variantname.RPC || p.admin == "" {
			continue
		}
		changed, err := postResilience(r.Context(), p.admin, req)
		if err != nil {
			writeError(w, http.StatusBadGateway, fmt.Errorf("%s: %w (parts before it were changed: %v)", p.name, err, keys(out)))
			return
		}
		if changed == nil {
			continue // no outbound dependencies (movies-rpc)
		}
		p.mu.Lock()
		if req.Breakers != nil {
			p.args = setFlag(p.args, "--breakers", *req.Breakers)
		}
		if req.Retries != nil {
			p.args = setFlag(p.args, "--retries", strconv.Itoa(*req.Retries))
		}
		p.mu.Unlock()
		out[p.name] = changed
	}
	if req.Breakers != nil {
		s.optMu.Lock()
		s.cfg.Options.Breakers = *req.Breakers == "on"
		s.optMu.Unlock()
		s.saveState()
	}
	s.log.Info("RPC resilience settings changed", "parts", keys(out))
	writeJSON(w, http.StatusOK, out)
}

// postResilience sends the change to one part; nil, nil when the part has
// no such endpoint (nothing to change).
func postResilience(ctx context.Context, admin string, req breaker.Resilience) (any, error) {
	b, _ := json.Marshal(req)
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+admin+"/admin/resilience", bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("answered %d: %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	var out any
	return out, json.Unmarshal(body, &out)
}

// setFlag sets --name's value in args (the last occurrence wins when a
// flag repeats, so it replaces every one), or appends it.
func setFlag(args []string, name, value string) []string {
	out := append([]string(nil), args...)
	found := false
	for i := 0; i < len(out); i++ {
		switch {
		case out[i] == name && i+1 < len(out):
			out[i+1] = value
			found = true
			i++
		case len(out[i]) > len(name) && out[i][:len(name)+1] == name+"=":
			out[i] = name + "=" + value
			found = true
		}
	}
	if !found {
		out = append(out, name, value)
	}
	return out
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// SetResilience asks the supervisor to switch the RPC variant's breakers
// and retries (POST /v1/resilience); the answer maps each changed part to
// its dependencies' settings.
func (c *Client) SetResilience(ctx context.Context, r breaker.Resilience) (map[string]any, error) {
	var out map[string]any
	return out, c.do(ctx, http.MethodPost, "/v1/resilience", r, &out)
}
