package replay

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/lab/supervisor"
	"github.com/ratingslab/lab/services/lib/eventformat"
	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/lib/metricname"
	"github.com/ratingslab/lab/services/model"
)

// Lab is a running lab as the replay commands see it: its state
// directory, ports, supervisor and broker.
type Lab struct {
	Dir     layout.Dir
	Ports   layout.Ports
	Control *supervisor.Client
	Kafka   *kafkaio.Cluster
	Log     *slog.Logger
	HTTP    *http.Client
	// Codec decodes the log in the lab's --format, through its registry.
	Codec *model.Codec
	// FormatArgs are --format and --registry for parts a replay starts.
	FormatArgs []string
}

// ErrLabDown means no lab runs in the state directory.
var ErrLabDown = errors.New("the lab is not running")

// Open finds the lab running in dir (its supervisor and broker). The port
// base comes from the lab's own state file, so it is right even when the
// command line's is not.
func Open(ctx context.Context, dir layout.Dir, log *slog.Logger) (*Lab, error) {
	st, err := supervisor.ReadState(dir)
	if errors.Is(err, supervisor.ErrNoState) {
		return nil, fmt.Errorf("%w in %s; start it with 'lab up'", ErrLabDown, dir)
	}
	if err != nil {
		return nil, err
	}
	c := supervisor.NewClient(st.Control)
	hctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := c.Healthy(hctx); err != nil {
		return nil, fmt.Errorf("%w in %s: its supervisor at %s does not answer (%v); 'lab down' cleans up", ErrLabDown, dir, st.Control, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ports := layout.Ports{Base: st.PortBase}
	k, err := Dial(st.Options.KafkaBootstrap(ports), log)
	if err != nil {
		return nil, err
	}
	codec, formatArgs, err := labCodec(ports, st.Options)
	if err != nil {
		k.Close()
		return nil, err
	}
	return &Lab{Dir: dir, Ports: ports, Control: c, Kafka: k, Log: log, HTTP: &http.Client{Timeout: 5 * time.Second},
		Codec: codec, FormatArgs: formatArgs}, nil
}

// Close releases the broker connections.
func (l *Lab) Close() { l.Kafka.Close() }

// Options are the switches the lab was started with (delivery, replicas).
func (l *Lab) Options(ctx context.Context) (parts.Options, error) {
	info, err := l.Control.Lab(ctx)
	if err != nil {
		return parts.Options{}, err
	}
	var o parts.Options
	b, _ := json.Marshal(info.Options)
	if err := json.Unmarshal(b, &o); err != nil {
		return o, fmt.Errorf("lab options: %w", err)
	}
	return o, nil
}

// Instances are the running lab's instances of part (name, name-2, ...).
func (l *Lab) Instances(ctx context.Context, part string) ([]supervisor.PartStatus, error) {
	ps, err := l.Control.Parts(ctx)
	if err != nil {
		return nil, err
	}
	var out []supervisor.PartStatus
	for i := 0; i < 16; i++ {
		name := parts.InstanceName(part, i)
		idx := slices.IndexFunc(ps, func(p supervisor.PartStatus) bool { return p.Name == name })
		if idx < 0 {
			break
		}
		out = append(out, ps[idx])
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the lab has no part %s", part)
	}
	return out, nil
}

// act runs a process action on every named part.
func (l *Lab) act(ctx context.Context, names []string, action supervisor.Action) error {
	for _, n := range names {
		if _, err := l.Control.Action(ctx, n, action); err != nil {
			return fmt.Errorf("%s %s: %w", action, n, err)
		}
	}
	return nil
}

// waitHealthy waits (bounded) until every named part is healthy.
func (l *Lab) waitHealthy(ctx context.Context, names []string, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for {
		ps, err := l.Control.Parts(ctx)
		if err == nil {
			var sick []string
			for _, p := range ps {
				if slices.Contains(names, p.Name) && p.Health != supervisor.HealthOK {
					sick = append(sick, fmt.Sprintf("%s is %s (%s)", p.Name, p.Health, p.Error))
				}
			}
			if len(sick) == 0 {
				return nil
			}
			err = errors.New(strings.Join(sick, "; "))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not healthy after %s: %w", bound, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// consumed reads lab_kafka_consumed_messages_total of topic from the
// /metrics of the part whose public address is addr (on its admin listener;
// 0 when the part does not export it yet).
func (l *Lab) consumed(ctx context.Context, addr, topic string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+l.Ports.Admin(addr)+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := l.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	prefix := metricname.KafkaConsumedMessagesTotal + `{topic="` + topic + `"} `
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("metric %s%s: %w", prefix, v, err)
			}
			return int64(f), nil
		}
	}
	return 0, sc.Err()
}

// healthy reports whether the /healthz of the part whose public address is
// addr (on its admin listener) answers 200.
func (l *Lab) healthy(ctx context.Context, addr string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+l.Ports.Admin(addr)+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := l.HTTP.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// labCodec is the codec of a lab started with o: its format, and its
// registry reached directly (replay tools are not behind an edge proxy).
func labCodec(p layout.Ports, o parts.Options) (*model.Codec, []string, error) {
	cfg := eventformat.Config{Format: o.Format, Registry: parts.RegistryURL(p, o)}
	codec, err := cfg.Codec(nil)
	if err != nil {
		return nil, nil, fmt.Errorf("the lab's event format: %w", err)
	}
	return codec, []string{"--format", string(codec.Format()), "--registry", cfg.Registry}, nil
}
