package faults

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/lab/supervisor"
	"github.com/ratingslab/lab/services/lib/metricname"
)

// State is where a fault is in its life: active until healed, or done at
// once when it is instant.
type State string

// Fault states.
const (
	StateActive State = "active" // in force until healed
	StateHealed State = "healed" // was active, is healed
	StateDone   State = "done"   // instant: applied once, nothing to heal
)

// Healer says who healed a fault.
type Healer string

// Who healed a fault.
const (
	HealedByTimer    Healer = "timer"    // its --for ran out
	HealedByRequest  Healer = "request"  // lab chaos heal, the experiment runner, the API
	HealedByShutdown Healer = "shutdown" // lab down
)

// Fault is one injected fault as the API reports it.
type Fault struct {
	ID      string `json:"id"`
	Fault   string `json:"fault"`
	Target  string `json:"target"`
	Variant string `json:"variant,omitempty"`
	Params  Params `json:"params,omitempty"`
	// For is how long the fault lasts before it heals itself ("" = until healed).
	For string `json:"for,omitempty"`
	// Owner says who injected it (the CLI, or an experiment run).
	Owner      string    `json:"owner,omitempty"`
	State      State     `json:"state"`
	InjectedAt time.Time `json:"injected_at"`
	HealsAt    time.Time `json:"heals_at,omitzero"`
	HealedAt   time.Time `json:"healed_at,omitzero"`
	HealedBy   Healer    `json:"healed_by,omitempty"`
	// HealError is set when undoing the fault failed (for example a killed
	// part that would not start again); the fault is no longer tracked.
	HealError string `json:"heal_error,omitempty"`
	// Outcome is what the target answered when the fault was applied, when
	// that is news (a schema registry's decision on a contract change).
	Outcome string `json:"outcome,omitempty"`
}

// Request asks for one fault.
type Request struct {
	Fault  string      `json:"fault"`
	Target string      `json:"target"`
	Params ParamValues `json:"params,omitempty"`
	// For makes the fault heal itself after this long ("30s").
	For   string `json:"for,omitempty"`
	Owner string `json:"owner,omitempty"`
}

// Processes is the supervisor's process control (supervisor.Supervisor).
type Processes interface {
	Signal(ctx context.Context, part string, action supervisor.Action) (supervisor.PartStatus, error)
}

// Config is what the injector needs from the lab.
type Config struct {
	// Proxies is the embedded Toxiproxy holding one proxy per edge.
	Proxies *toxiproxy.ApiServer
	// Held reports an edge proxy the supervisor closed because nothing
	// listens behind it (supervisor.Edges.Held): disabled, but no fault.
	Held func(edge string) bool
	// Processes kills, pauses and starts parts; nil disables process faults.
	Processes Processes
	// Targets lists what exists in this lab.
	Targets Targets
	// Broker is the broker address poison records are written to; Brokers,
	// when set, are the bootstrap addresses of a cluster instead.
	Broker  string
	Brokers []string
	// Registry is the schema registry's base URL (Avro poison kinds look up
	// the ratings schema id there).
	Registry string
	// HTTP calls the parts' admin endpoints (default: 5s timeout).
	HTTP *http.Client
	// Registerer receives lab_fault_active (nil: not registered).
	Registerer prometheus.Registerer
	Log        *slog.Logger
}

// bootstrap is where the injector writes to Kafka directly.
func (c Config) bootstrap() []string {
	if len(c.Brokers) > 0 {
		return c.Brokers
	}
	if c.Broker != "" {
		return []string{c.Broker}
	}
	return nil
}

// HistorySize bounds how many finished faults the injector remembers.
const HistorySize = 500

// Injector applies and heals faults. It is safe for concurrent use.
type Injector struct {
	cfg    Config
	log    *slog.Logger
	http   *http.Client
	active *prometheus.GaugeVec

	mu       sync.Mutex
	next     int
	running  map[string]*record // active (or being applied), by id
	healing  map[string]*record // being healed, by id: until healed, still the fault's
	history  []Fault            // finished, oldest first
	shutting bool

	svcMu sync.Mutex // serializes admin calls so merged fault sets stay consistent
}

// record is an active fault with what it takes to heal it.
type record struct {
	Fault
	kind   Kind
	effect effect
	timer  *time.Timer
	ready  bool          // applied; false while being applied
	healed chan struct{} // closed once healing it is over
}

// effect is how one fault acts on the lab.
type effect interface {
	apply(ctx context.Context) error
	heal(ctx context.Context, shutdown bool) error
}

// Errors the API maps to status codes.
var (
	ErrInvalid  = errors.New("invalid fault request")
	ErrConflict = errors.New("conflicting fault")
	ErrNotFound = errors.New("no such fault")
)

// New returns an injector for one lab.
func New(cfg Config) *Injector {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 5 * time.Second}
	}
	inj := &Injector{cfg: cfg, log: cfg.Log, http: cfg.HTTP, running: map[string]*record{}, healing: map[string]*record{}}
	inj.active = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: metricname.FaultActive,
		Help: "Whether a fault is in force (1) or was healed (0), per fault and target; for Grafana annotations.",
	}, []string{"fault", "target"})
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(inj.active)
	}
	return inj
}

// Targets lists what faults can be applied to in this lab.
func (inj *Injector) Targets() Targets { return inj.cfg.Targets }

// Validate checks a request without applying it and returns the fault, its
// normalized parameters and duration.
func (inj *Injector) Validate(req Request) (Kind, Params, time.Duration, error) {
	return Validate(req, inj.cfg.Targets)
}

// Validate checks a request against the catalog and a lab's targets.
func Validate(req Request, targets Targets) (Kind, Params, time.Duration, error) {
	k, err := Lookup(req.Fault)
	if err != nil {
		return Kind{}, nil, 0, fmt.Errorf("fault: %w", err)
	}
	if err := targets.Check(k, req.Target); err != nil {
		return Kind{}, nil, 0, err
	}
	params, err := k.Resolve(req.Params)
	if err != nil {
		return Kind{}, nil, 0, err
	}
	var d time.Duration
	if req.For != "" {
		if !k.Timed {
			return Kind{}, nil, 0, fmt.Errorf("for: %s takes effect once and has nothing to heal; drop --for", k.Name)
		}
		d, err = time.ParseDuration(req.For)
		if err != nil {
			return Kind{}, nil, 0, fmt.Errorf("for: want a duration such as 30s, got %q", req.For)
		}
		if d <= 0 || d > MaxDuration {
			return Kind{}, nil, 0, fmt.Errorf("for: must be more than 0 and at most %s, got %s", MaxDuration, d)
		}
	}
	return k, params, d, nil
}

// Inject validates and applies one fault. Instant faults come back in state
// done; others are active until healed (by their timer when For is set).
func (inj *Injector) Inject(ctx context.Context, req Request) (Fault, error) {
	k, params, d, err := inj.Validate(req)
	if err != nil {
		return Fault{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	instant := k.InstantFor(d)

	inj.mu.Lock()
	if inj.shutting {
		inj.mu.Unlock()
		return Fault{}, fmt.Errorf("%w: the lab is shutting down", ErrConflict)
	}
	if other := inj.conflictLocked(k, req.Target); other != nil {
		inj.mu.Unlock()
		return Fault{}, fmt.Errorf("%w: %s on %s is already active as %s; heal it first (lab chaos heal %s)", ErrConflict, other.Fault.Fault, other.Target, other.ID, other.ID)
	}
	inj.next++
	rec := &record{kind: k, Fault: Fault{
		ID: "f-" + strconv.Itoa(inj.next), Fault: k.Name, Target: req.Target, Variant: inj.cfg.Targets.Variants[req.Target],
		Params: params, Owner: req.Owner, State: StateActive,
	}}
	if d > 0 {
		rec.For = d.String()
	}
	if len(rec.Params) == 0 {
		rec.Params = nil
	}
	rec.effect = inj.effectFor(rec, d)
	if !instant {
		inj.running[rec.ID] = rec // reserves the target while applying
	}
	inj.mu.Unlock()

	err = rec.effect.apply(ctx)
	now := time.Now()

	inj.mu.Lock()
	defer inj.mu.Unlock()
	if err != nil {
		delete(inj.running, rec.ID)
		return Fault{}, fmt.Errorf("%w: %s on %s: %v", ErrConflict, k.Name, req.Target, err)
	}
	rec.InjectedAt = now
	if o, ok := rec.effect.(outcomer); ok {
		rec.Outcome = o.outcome()
	}
	if instant {
		rec.State = StateDone
		inj.rememberLocked(rec.Fault)
		inj.log.Info("fault applied", "id", rec.ID, "fault", k.Name, "target", req.Target, "params", params, "owner", req.Owner)
		return rec.Fault, nil
	}
	rec.ready = true
	if d > 0 {
		rec.HealsAt = now.Add(d)
		id := rec.ID
		rec.timer = time.AfterFunc(d, func() {
			hctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := inj.heal(hctx, id, HealedByTimer); err != nil && !errors.Is(err, ErrNotFound) {
				inj.log.Warn("timed heal failed", "id", id, "err", err)
			}
		})
	}
	inj.active.WithLabelValues(k.Name, req.Target).Set(1)
	inj.log.Info("fault injected", "id", rec.ID, "fault", k.Name, "target", req.Target, "params", params, "for", rec.For, "owner", req.Owner)
	return rec.Fault, nil
}

// conflictLocked finds an active fault that may not coexist with a new one:
// the same fault on the same target, or any second process fault on a part
// (a part is either killed, paused or stopped, never two at once).
func (inj *Injector) conflictLocked(k Kind, target string) *record {
	for _, r := range inj.running {
		if r.Target != target {
			continue
		}
		if r.kind.Name == k.Name || (r.kind.Targets == TargetPart && k.Targets == TargetPart) {
			return r
		}
	}
	return nil
}

// Heal undoes one fault. Healing a fault that already healed returns it
// unchanged; an unknown id is ErrNotFound.
func (inj *Injector) Heal(ctx context.Context, id string) (Fault, error) {
	return inj.heal(ctx, id, HealedByRequest)
}

func (inj *Injector) heal(ctx context.Context, id string, by Healer) (Fault, error) {
	inj.mu.Lock()
	rec, ok := inj.running[id]
	if h, healing := inj.healing[id]; healing {
		// A heal in progress (a timed one, say) is this caller's too: it
		// gets that heal's outcome, not "no such fault".
		inj.mu.Unlock()
		select {
		case <-h.healed:
		case <-ctx.Done():
			return Fault{}, fmt.Errorf("%s is being healed: %w", id, ctx.Err())
		}
		inj.mu.Lock()
		defer inj.mu.Unlock()
		return h.Fault, nil
	}
	if !ok {
		defer inj.mu.Unlock()
		for i := len(inj.history) - 1; i >= 0; i-- {
			if inj.history[i].ID == id {
				return inj.history[i], nil
			}
		}
		return Fault{}, fmt.Errorf("%w %q (active: %v)", ErrNotFound, id, inj.activeIDsLocked())
	}
	if !rec.ready {
		inj.mu.Unlock()
		return Fault{}, fmt.Errorf("%w: %s is still being applied; try again", ErrConflict, id)
	}
	delete(inj.running, id)
	rec.healed = make(chan struct{})
	inj.healing[id] = rec
	if rec.timer != nil {
		rec.timer.Stop()
	}
	inj.mu.Unlock()

	err := rec.effect.heal(ctx, by == HealedByShutdown)
	now := time.Now()
	inj.mu.Lock()
	defer inj.mu.Unlock()
	delete(inj.healing, id)
	defer close(rec.healed)
	rec.State, rec.HealedAt, rec.HealedBy = StateHealed, now, by
	if err != nil {
		rec.HealError = err.Error()
		inj.log.Warn("heal failed", "id", id, "fault", rec.kind.Name, "target", rec.Target, "err", err)
	} else {
		inj.log.Info("fault healed", "id", id, "fault", rec.kind.Name, "target", rec.Target, "by", by)
	}
	inj.active.WithLabelValues(rec.kind.Name, rec.Target).Set(0)
	inj.rememberLocked(rec.Fault)
	return rec.Fault, nil
}

// HealAll heals every active fault, in parallel, and returns them.
func (inj *Injector) HealAll(ctx context.Context) []Fault {
	return inj.healAll(ctx, HealedByRequest)
}

// Shutdown heals everything before the lab stops and refuses new faults.
// A killed part is not started again only to be stopped.
func (inj *Injector) Shutdown(ctx context.Context) {
	inj.mu.Lock()
	inj.shutting = true
	inj.mu.Unlock()
	inj.healAll(ctx, HealedByShutdown)
}

func (inj *Injector) healAll(ctx context.Context, by Healer) []Fault {
	// A fault still being applied is waited for, briefly, so it is healed too.
	deadline := time.Now().Add(5 * time.Second)
	var ids []string
	for {
		inj.mu.Lock()
		ids = ids[:0]
		pending := false
		for id, r := range inj.running {
			if !r.ready {
				pending = true
			}
			ids = append(ids, id)
		}
		inj.mu.Unlock()
		if !pending || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	sortIDs(ids)
	out := make([]Fault, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := inj.heal(ctx, id, by)
			if err != nil {
				f = Fault{ID: id, HealError: err.Error()}
			}
			out[i] = f
		}()
	}
	wg.Wait()
	return out
}

// Active returns the active faults, those being healed included, oldest
// first.
func (inj *Injector) Active() []Fault {
	inj.mu.Lock()
	defer inj.mu.Unlock()
	var out []Fault
	for _, r := range inj.running {
		if r.ready {
			out = append(out, r.Fault)
		}
	}
	for _, r := range inj.healing {
		out = append(out, r.Fault) // active until its heal is over
	}
	sort.Slice(out, func(i, j int) bool { return idNum(out[i].ID) < idNum(out[j].ID) })
	return out
}

// History returns finished faults (healed or instant), oldest first.
func (inj *Injector) History() []Fault {
	inj.mu.Lock()
	defer inj.mu.Unlock()
	return slices.Clone(inj.history)
}

// Get returns one fault, active or finished.
func (inj *Injector) Get(id string) (Fault, error) {
	inj.mu.Lock()
	defer inj.mu.Unlock()
	if r, ok := inj.running[id]; ok && r.ready {
		return r.Fault, nil
	}
	if r, ok := inj.healing[id]; ok {
		return r.Fault, nil // still active until its heal is over
	}
	for i := len(inj.history) - 1; i >= 0; i-- {
		if inj.history[i].ID == id {
			return inj.history[i], nil
		}
	}
	return Fault{}, fmt.Errorf("%w %q", ErrNotFound, id)
}

func (inj *Injector) rememberLocked(f Fault) {
	inj.history = append(inj.history, f)
	if n := len(inj.history) - HistorySize; n > 0 {
		inj.history = slices.Delete(inj.history, 0, n)
	}
}

func (inj *Injector) activeIDsLocked() []string {
	ids := make([]string, 0, len(inj.running))
	for id := range inj.running {
		ids = append(ids, id)
	}
	sortIDs(ids)
	return ids
}

func sortIDs(ids []string) {
	sort.Slice(ids, func(i, j int) bool { return idNum(ids[i]) < idNum(ids[j]) })
}

func idNum(id string) int {
	n, _ := strconv.Atoi(id[min(2, len(id)):])
	return n
}

// embeddedKafka reports whether the lab's Kafka is the embedded broker.
func (inj *Injector) embeddedKafka() bool {
	return inj.cfg.Targets.Platform == "" || inj.cfg.Targets.Platform == parts.KafkaEmbedded
}

// effectMaker builds a fault's effect on one target. Every catalog entry
// holds one (Kind.act): what a fault does is data next to its name — a
// toxic for an edge, an admin call for a service, a process action for a
// part — or, where the effect has logic of its own, a constructor.
type effectMaker interface {
	effectOn(inj *Injector, rec *record, d time.Duration) effect
}

// makeEffect is a constructor used as an effectMaker.
type makeEffect func(inj *Injector, rec *record, d time.Duration) effect

func (f makeEffect) effectOn(inj *Injector, rec *record, d time.Duration) effect {
	return f(inj, rec, d)
}

// effectFor builds the effect of a fault on its target.
func (inj *Injector) effectFor(rec *record, d time.Duration) effect {
	if rec.kind.act == nil {
		panic("faults: no effect for " + rec.kind.Name)
	}
	return rec.kind.act.effectOn(inj, rec, d)
}

// brokerKiller kills a broker part found when a fault is applied.
func (inj *Injector) brokerKiller() brokerKill {
	return brokerKill{kill: processEffect{procs: inj.cfg.Processes, act: killPart}, embedded: inj.embeddedKafka()}
}

func newLeaderEffect(inj *Injector, rec *record, _ time.Duration) effect {
	return &leaderEffect{brokers: inj.cfg.bootstrap(), topic: rec.Target, partition: leaderPartition(rec.Params), brokerKill: inj.brokerKiller()}
}

func newCoordinatorEffect(inj *Injector, rec *record, _ time.Duration) effect {
	return &coordinatorEffect{brokers: inj.cfg.bootstrap(), group: rec.Target, brokerKill: inj.brokerKiller()}
}

func newKafkaEffect(inj *Injector, rec *record, _ time.Duration) effect {
	return &kafkaEffect{inj: inj, broker: rec.Target, id: rec.ID, kind: rec.kind, params: rec.Params}
}

func newPoisonEffect(inj *Injector, rec *record, _ time.Duration) effect {
	return &poisonEffect{brokers: inj.cfg.bootstrap(), registry: inj.cfg.Registry, topic: rec.Target, id: rec.ID, params: rec.Params}
}

func newContractEffect(inj *Injector, rec *record, _ time.Duration) effect {
	return &contractEffect{inj: inj, instance: rec.Target, params: rec.Params}
}

func newCompatibilityEffect(inj *Injector, rec *record, _ time.Duration) effect {
	return &compatibilityEffect{inj: inj, params: rec.Params}
}
