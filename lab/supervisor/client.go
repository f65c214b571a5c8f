package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func pid() int { return os.Getpid() }

// Client talks to a running supervisor's control API.
type Client struct {
	Base string // "http://127.0.0.1:7700"
	HTTP *http.Client
}

// NewClient returns a client for the control API at addr.
func NewClient(addr string) *Client {
	return &Client{Base: "http://" + addr, HTTP: &http.Client{Timeout: 15 * time.Second}}
}

// Parts lists every process with its health.
func (c *Client) Parts(ctx context.Context) ([]PartStatus, error) {
	var out []PartStatus
	return out, c.do(ctx, http.MethodGet, "/v1/parts", nil, &out)
}

// Lab describes the running lab.
func (c *Client) Lab(ctx context.Context) (LabInfo, error) {
	var out LabInfo
	return out, c.do(ctx, http.MethodGet, "/v1/lab", nil, &out)
}

// Action runs start, stop, restart, kill, pause or resume on a part.
func (c *Client) Action(ctx context.Context, part string, action Action) (PartStatus, error) {
	var out PartStatus
	return out, c.do(ctx, http.MethodPost, "/v1/parts/"+part+"/"+string(action), nil, &out)
}

// Shutdown asks the supervisor to stop everything and exit.
func (c *Client) Shutdown(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/shutdown", nil, nil)
}

// Handover tells the supervisor that `lab up` saw every part healthy and
// hands the lab over: from then on it outlives the `lab up` that started it.
func (c *Client) Handover(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/handover", nil, nil)
}

// Healthy reports whether the control API answers.
func (c *Client) Healthy(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/healthz", nil, nil)
}

// Do sends a JSON request to path and decodes a JSON answer into out (if
// non-nil). Error answers become errors carrying the server's message.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	return c.do(ctx, method, path, in, out)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s", e.Error)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}
