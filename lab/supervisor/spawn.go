package supervisor

// Processes added at runtime. `lab replay fork` starts a fork's broker,
// mirror, processor and view while the lab runs; they must be supervised
// like parts — log in <dir>/logs, pid file for `lab down`'s sweep, health
// probes, the same process actions, stopped at shutdown — without being
// parts that `lab up` starts. The API, on the loopback-only control API:
//
//	POST   /v1/parts                    start a process: SpawnSpec → 201 SpawnedStatus (200 if it existed)
//	GET    /v1/spawned                  every spawned process
//	POST   /v1/spawned/{name}/{action}  start, stop, restart, kill, pause, resume
//	DELETE /v1/spawned/{name}           stop it, close its edge proxy, forget it
//
// Only the lab binary is run (`lab serve ...` or `lab replay ...`), never an
// arbitrary executable. EnableSpawn wires it; the rest of the supervisor is
// unchanged.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/ratingslab/lab/services/lib/kafkaio/embedded"
)

// SpawnSpec describes a process to start at runtime.
type SpawnSpec struct {
	// Name is unique among parts and spawned processes: 1-63 of a-z 0-9 -.
	Name string `json:"name"`
	// Group ties processes started together (a fork), for listing.
	Group   string `json:"group,omitempty"`
	Variant string `json:"variant"`
	// Addr is shown in status tables.
	Addr string `json:"addr"`
	// Args follow the lab binary: "serve <part> ..." or "replay ...".
	Args   []string    `json:"args"`
	Health SpawnHealth `json:"health"`
	// Edge, when set, is a fault proxy opened before the process starts
	// (and closed when it is removed), like the parts' edge proxies.
	Edge *SpawnEdge `json:"edge,omitempty"`
	// Edges are more fault proxies like Edge (a Kafka client's edge to each
	// node of a cluster).
	Edges []SpawnEdge `json:"edges,omitempty"`
}

// allEdges are Edge and Edges.
func (sp SpawnSpec) allEdges() []SpawnEdge {
	out := slices.Clone(sp.Edges)
	if sp.Edge != nil {
		out = append([]SpawnEdge{*sp.Edge}, out...)
	}
	return out
}

// SpawnHealth says how to probe a spawned process: GET http://HTTP/healthz
// (its admin listener),
// or a Kafka metadata request to Kafka (a broker).
type SpawnHealth struct {
	HTTP  string `json:"http,omitempty"`
	Kafka string `json:"kafka,omitempty"`
}

// SpawnEdge is a fault proxy for a spawned process.
type SpawnEdge struct {
	Name     string `json:"name"`
	Listen   string `json:"listen"`
	Upstream string `json:"upstream"`
	// Server is the lab part listening at Upstream (a fork's mirror's edge to
	// the lab's broker), "" for none: like the lab's own edges, the edge then
	// refuses connections while that part is down.
	Server string `json:"server,omitempty"`
}

// SpawnedStatus is a spawned process as the API reports it.
type SpawnedStatus struct {
	PartStatus
	Group string      `json:"group,omitempty"`
	Args  []string    `json:"args"`
	Edge  *SpawnEdge  `json:"edge,omitempty"`
	Edges []SpawnEdge `json:"edges,omitempty"`
}

var (
	spawnName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	edgeName  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}->[a-z0-9][a-z0-9-]{0,62}$`)
)

func (sp SpawnSpec) validate() error {
	if !spawnName.MatchString(sp.Name) {
		return fmt.Errorf("name %q: want 1-63 of a-z 0-9 and -, starting with a letter or digit", sp.Name)
	}
	if len(sp.Args) == 0 || (sp.Args[0] != "serve" && sp.Args[0] != "replay") {
		return fmt.Errorf("args: must start with \"serve\" or \"replay\" (a lab subcommand), got %q", sp.Args)
	}
	if (sp.Health.HTTP == "") == (sp.Health.Kafka == "") {
		return errors.New("health: give exactly one of http or kafka")
	}
	for field, addr := range map[string]string{"health.http": sp.Health.HTTP, "health.kafka": sp.Health.Kafka} {
		if addr != "" && !loopbackAddr(addr) {
			return fmt.Errorf("%s %q: must be a loopback host:port", field, addr)
		}
	}
	for _, e := range sp.allEdges() {
		if !edgeName.MatchString(e.Name) {
			return fmt.Errorf("edge.name %q: want from->to", e.Name)
		}
		if !loopbackAddr(e.Listen) || !loopbackAddr(e.Upstream) {
			return fmt.Errorf("edge: listen %q and upstream %q must be loopback host:port", e.Listen, e.Upstream)
		}
	}
	return nil
}

func loopbackAddr(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	ip := net.ParseIP(host)
	return err == nil && port != "" && ip != nil && ip.IsLoopback()
}

// spawner owns the spawned processes of one supervisor.
type spawner struct {
	s *Supervisor

	mu      sync.Mutex
	procs   map[string]*spawnedProc
	order   []string // spawn order
	closed  bool     // shutting down: no new spawns
	probing bool
	stop    chan struct{}
}

type spawnedProc struct {
	p    *process
	spec SpawnSpec
}

func (sp *spawnedProc) status() SpawnedStatus {
	return SpawnedStatus{PartStatus: sp.p.status(), Group: sp.spec.Group, Args: sp.spec.Args, Edge: sp.spec.Edge, Edges: sp.spec.Edges}
}

// EnableSpawn adds the spawn API to the control API and stops spawned
// processes at shutdown, before the parts. Call it before Run.
func (s *Supervisor) EnableSpawn() {
	sp := &spawner{s: s, procs: map[string]*spawnedProc{}, stop: make(chan struct{})}
	s.Handle("POST /v1/parts", http.HandlerFunc(sp.handleSpawn))
	s.Handle("GET /v1/spawned", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, sp.list())
	}))
	s.Handle("POST /v1/spawned/{name}/{action}", http.HandlerFunc(sp.handleAction))
	s.Handle("DELETE /v1/spawned/{name}", http.HandlerFunc(sp.handleRemove))
	s.OnShutdown(sp.shutdown)
}

func (sp *spawner) handleSpawn(w http.ResponseWriter, r *http.Request) {
	var spec SpawnSpec
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("body: %v", err))
		return
	}
	if err := spec.validate(); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	for _, e := range spec.allEdges() {
		if _, isPart := sp.s.byName[e.Server]; e.Server != "" && !isPart {
			writeError(w, http.StatusBadRequest, fmt.Errorf("edge %s: server %q is not a part of the lab", e.Name, e.Server))
			return
		}
	}
	st, created, err := sp.spawn(spec)
	switch {
	case errors.Is(err, errSpawnConflict):
		writeError(w, http.StatusConflict, err)
	case errors.Is(err, errShuttingDown):
		writeError(w, http.StatusServiceUnavailable, err)
	case err != nil:
		writeError(w, http.StatusInternalServerError, err)
	case created:
		writeJSON(w, http.StatusCreated, st)
	default:
		writeJSON(w, http.StatusOK, st)
	}
}

var (
	errSpawnConflict = errors.New("conflict")
	errShuttingDown  = errors.New("the supervisor is shutting down")
)

// spawn starts spec's process. A process of the same name and arguments
// that exists already is started again if it is not running (so a stopped
// fork resumes); one with other arguments is a conflict.
func (sp *spawner) spawn(spec SpawnSpec) (SpawnedStatus, bool, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.closed {
		return SpawnedStatus{}, false, errShuttingDown
	}
	if _, isPart := sp.s.byName[spec.Name]; isPart {
		return SpawnedStatus{}, false, fmt.Errorf("%w: %s is a part of the lab", errSpawnConflict, spec.Name)
	}
	if have, ok := sp.procs[spec.Name]; ok {
		if !slices.Equal(have.spec.Args, spec.Args) {
			return SpawnedStatus{}, false, fmt.Errorf("%w: %s is already spawned with other arguments (%q); remove it first", errSpawnConflict, spec.Name, have.spec.Args)
		}
		if st := have.p.status(); st.PID == 0 {
			if err := have.p.start(); err != nil {
				return SpawnedStatus{}, false, err
			}
		}
		return have.status(), false, nil
	}
	cfg := sp.s.cfg
	exe := cfg.Exe
	if spec.Args[0] == "serve" {
		exe = cfg.partExe()
	}
	p := &process{name: spec.Name, variant: spec.Variant, addr: spec.Addr, admin: spec.Health.HTTP, path: exe, args: spec.Args,
		logPath: cfg.Dir.Log(spec.Name), pidDir: cfg.Dir.Path("pids"), labDir: string(cfg.Dir)}
	if spec.Health.Kafka != "" {
		addr := spec.Health.Kafka
		p.probe = func(ctx context.Context) error { return embedded.Ready(ctx, addr) }
	} else {
		p.probe = httpProbe(&http.Client{Timeout: time.Second}, spec.Health.HTTP, p)
	}
	p.edgesOpen = sp.s.edges.Open
	var added []string
	for _, e := range spec.allEdges() {
		if err := sp.s.edges.Add(e.Name, e.Listen, e.Upstream, e.Server); err != nil {
			for _, name := range added { // only its own: a name in use stays with its owner
				sp.s.edges.Remove(name)
			}
			return SpawnedStatus{}, false, err
		}
		added = append(added, e.Name)
	}
	if err := p.start(); err != nil {
		sp.closeEdge(spec)
		return SpawnedStatus{}, false, err
	}
	sp.procs[spec.Name] = &spawnedProc{p: p, spec: spec}
	sp.order = append(sp.order, spec.Name)
	if !sp.probing {
		sp.probing = true
		go sp.probeLoop()
	}
	sp.s.log.Info("spawned", "name", spec.Name, "group", spec.Group, "args", spec.Args)
	return sp.procs[spec.Name].status(), true, nil
}

func (sp *spawner) closeEdge(spec SpawnSpec) {
	for _, e := range spec.allEdges() {
		sp.s.edges.Remove(e.Name)
	}
}

func (sp *spawner) list() []SpawnedStatus {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	out := make([]SpawnedStatus, 0, len(sp.order))
	for _, name := range sp.order {
		out = append(out, sp.procs[name].status())
	}
	return out
}

func (sp *spawner) lookup(name string) (*spawnedProc, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if p, ok := sp.procs[name]; ok {
		return p, nil
	}
	return nil, fmt.Errorf("%w %q (spawned: %v)", errUnknownPart, name, sp.order)
}

func (sp *spawner) handleAction(w http.ResponseWriter, r *http.Request) {
	proc, err := sp.lookup(r.PathValue("name"))
	if err != nil {
		writeError(w, http.StatusNotFound, err)
		return
	}
	if err := sp.s.act(r.Context(), proc.p, Action(r.PathValue("action"))); err != nil {
		code := http.StatusConflict
		if errors.Is(err, errUnknownAction) {
			code = http.StatusBadRequest
		}
		writeError(w, code, err)
		return
	}
	writeJSON(w, http.StatusOK, proc.status())
}

func (sp *spawner) handleRemove(w http.ResponseWriter, r *http.Request) {
	proc, err := sp.lookup(r.PathValue("name"))
	if err != nil {
		writeError(w, http.StatusNotFound, err)
		return
	}
	proc.p.stop(StopGrace)
	sp.mu.Lock()
	delete(sp.procs, proc.spec.Name)
	sp.order = slices.DeleteFunc(sp.order, func(n string) bool { return n == proc.spec.Name })
	sp.mu.Unlock()
	sp.closeEdge(proc.spec)
	sp.s.partUp.DeleteLabelValues(proc.spec.Name)
	writeJSON(w, http.StatusOK, proc.status())
}

// probeLoop checks every spawned process twice a second until shutdown.
func (sp *spawner) probeLoop() {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		sp.mu.Lock()
		procs := make([]*spawnedProc, 0, len(sp.procs))
		for _, name := range sp.order {
			procs = append(procs, sp.procs[name])
		}
		sp.mu.Unlock()
		var wg sync.WaitGroup
		for _, proc := range procs {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				proc.p.check(ctx)
				up := 0.0
				if proc.p.status().Health == HealthOK {
					up = 1
				}
				sp.s.partUp.WithLabelValues(proc.spec.Name).Set(up)
			})
		}
		wg.Wait()
		select {
		case <-sp.stop:
			return
		case <-t.C:
		}
	}
}

// shutdown stops every spawned process, brokers last so that their clients
// can leave cleanly, and closes their edge proxies.
func (sp *spawner) shutdown(ctx context.Context) {
	sp.mu.Lock()
	if sp.closed {
		sp.mu.Unlock()
		return
	}
	sp.closed = true
	if sp.probing {
		close(sp.stop)
	}
	var clients, brokers []*spawnedProc
	for _, name := range sp.order {
		proc := sp.procs[name]
		if proc.spec.Health.Kafka != "" {
			brokers = append(brokers, proc)
		} else {
			clients = append(clients, proc)
		}
	}
	sp.mu.Unlock()
	for _, wave := range [][]*spawnedProc{clients, brokers} {
		var wg sync.WaitGroup
		for _, proc := range wave {
			wg.Go(func() { proc.p.stop(StopGrace) })
		}
		wg.Wait()
	}
	for _, proc := range append(clients, brokers...) {
		sp.closeEdge(proc.spec)
	}
}

// Spawn starts a process at runtime (POST /v1/parts).
func (c *Client) Spawn(ctx context.Context, spec SpawnSpec) (SpawnedStatus, error) {
	var out SpawnedStatus
	return out, c.do(ctx, http.MethodPost, "/v1/parts", spec, &out)
}

// Spawned lists the processes started at runtime.
func (c *Client) Spawned(ctx context.Context) ([]SpawnedStatus, error) {
	var out []SpawnedStatus
	return out, c.do(ctx, http.MethodGet, "/v1/spawned", nil, &out)
}

// SpawnedAction runs start, stop, restart, kill, pause or resume on a
// spawned process.
func (c *Client) SpawnedAction(ctx context.Context, name string, action Action) (SpawnedStatus, error) {
	var out SpawnedStatus
	return out, c.do(ctx, http.MethodPost, "/v1/spawned/"+name+"/"+string(action), nil, &out)
}

// RemoveSpawned stops a spawned process and forgets it.
func (c *Client) RemoveSpawned(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/spawned/"+name, nil, nil)
}
