package eventformat

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/ratingslab/lab/services/model"
)

// Client is a Confluent-API registry client with the caches a serializer
// keeps: the id of each (subject, schema) registered, and each schema text
// by id. A cached lookup costs no request; a miss is one bounded request.
type Client struct {
	cl      *sr.Client
	metrics *Metrics

	mu   sync.RWMutex
	ids  map[string]int // subject + "\x00" + schema → id
	byID map[int]string
}

// RequestTimeout bounds one registry request.
const RequestTimeout = 5 * time.Second

// NewClient talks to the registry at base (e.g. http://127.0.0.1:7706).
func NewClient(base string, m *Metrics) (*Client, error) {
	if err := CheckURL(base); err != nil {
		return nil, err
	}
	cl, err := sr.NewClient(sr.URLs(strings.TrimRight(base, "/")), sr.HTTPClient(&http.Client{Timeout: RequestTimeout}),
		sr.UserAgent("ratings-lab"))
	if err != nil {
		return nil, err
	}
	return &Client{cl: cl, metrics: m, ids: map[string]int{}, byID: map[int]string{}}, nil
}

// SR is the underlying franz-go client, for tools that need more of the API.
func (c *Client) SR() *sr.Client { return c.cl }

// Register implements model.SchemaRegistry.
func (c *Client) Register(ctx context.Context, subject, schema string) (int, error) {
	key := subject + "\x00" + schema
	c.mu.RLock()
	id, ok := c.ids[key]
	c.mu.RUnlock()
	if ok {
		return id, nil
	}
	id, err := c.cl.RegisterSchema(ctx, subject, sr.Schema{Schema: schema, Type: sr.TypeAvro}, -1, -1)
	c.metrics.request("register", err)
	if err != nil {
		return 0, describe(err)
	}
	c.mu.Lock()
	c.ids[key] = id
	c.byID[id] = schema
	c.mu.Unlock()
	return id, nil
}

// SchemaByID implements model.SchemaRegistry.
func (c *Client) SchemaByID(ctx context.Context, id int) (string, error) {
	c.mu.RLock()
	text, ok := c.byID[id]
	c.mu.RUnlock()
	if ok {
		c.metrics.cached.Inc()
		return text, nil
	}
	s, err := c.cl.SchemaByID(ctx, id)
	c.metrics.request("schema_by_id", err)
	if err != nil {
		var re *sr.ResponseError
		if errors.As(err, &re) && re.ErrorCode == sr.ErrSchemaNotFound.Code {
			return "", fmt.Errorf("%w: %s", model.ErrSchemaNotFound, re.Message)
		}
		return "", describe(err)
	}
	c.mu.Lock()
	c.byID[id] = s.Schema
	c.mu.Unlock()
	return s.Schema, nil
}

// describe turns a registry's error answer into a message with its codes.
func describe(err error) error {
	var re *sr.ResponseError
	if errors.As(err, &re) {
		return &RefusedError{Status: re.StatusCode, Code: re.ErrorCode, Message: re.Message}
	}
	return fmt.Errorf("schema registry unreachable: %w", err)
}

// RefusedError is a registry's error answer (HTTP status and Confluent
// error_code), e.g. 409 for an incompatible schema.
type RefusedError struct {
	Status  int
	Code    int
	Message string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("schema registry answered %d (error_code %d): %s", e.Status, e.Code, e.Message)
}

// Incompatible says whether the registry refused a schema as incompatible.
func (e *RefusedError) Incompatible() bool { return e.Status == http.StatusConflict }
