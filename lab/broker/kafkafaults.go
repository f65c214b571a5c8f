package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/ratingslab/lab/services/lib/kafkaio/embedded"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Protocol faults: what a real Kafka cluster answers when it is in trouble,
// answered by the embedded broker on purpose (kfake's Fault API and its
// cluster operations), so that failover-style experiments run on the
// default lab in seconds. The lab's fault injector drives them through the
// broker's loopback admin endpoint (`lab chaos inject not_enough_replicas
// --target broker ...`). Each kind names the real-cluster event it stands
// for (docs in lab/faults' catalog and experiments/README.md):
//
//	not_enough_replicas  produce refused, nothing appended (NOT_ENOUGH_REPLICAS): the ISR is below min.insync.replicas
//	produce_timeout      produce appended, then answered REQUEST_TIMED_OUT (or NOT_ENOUGH_REPLICAS_AFTER_APPEND):
//	                     the write happened and the producer cannot know — an ambiguous write
//	leader_election      the topic's partitions have no leader (NOT_LEADER_OR_FOLLOWER) until healed, then new
//	                     leaders with new leader epochs (another node, on a multi-node broker)
//	coordinator_move     the group coordinator moves: group requests answered NOT_COORDINATOR until healed;
//	                     members that cannot heartbeat for their session timeout are expired, so the group rebalances
//	node_loss            a node of a multi-node broker is removed (its listener and connections closed, its
//	                     partitions and coordinators moved); healing adds it back on its port

// Kafka fault kinds, as the admin endpoint and the fault catalog name them.
const (
	KafkaNotEnoughReplicas = "not_enough_replicas"
	KafkaProduceTimeout    = "produce_timeout"
	KafkaLeaderElection    = "leader_election"
	KafkaCoordinatorMove   = "coordinator_move"
	KafkaNodeLoss          = "node_loss"
)

// KafkaFault asks for one protocol fault (POST /admin/kafka/faults).
type KafkaFault struct {
	// ID is the lab's fault id ("f-12"); healing uses it.
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// Topic and Partition select the partitions (Partition -1: all of them).
	Topic     string `json:"topic,omitempty"`
	Partition int32  `json:"partition"`
	// Group is the consumer group of coordinator_move.
	Group string `json:"group,omitempty"`
	// Node is the node of node_loss (1-based, as in broker-1).
	Node int `json:"node,omitempty"`
	// Fraction of matching requests faulted (0 < f <= 1).
	Fraction float64 `json:"fraction,omitempty"`
	// Error is produce_timeout's answer: REQUEST_TIMED_OUT or NOT_ENOUGH_REPLICAS_AFTER_APPEND.
	Error string `json:"error,omitempty"`
}

// ActiveKafkaFault is a fault in force, as GET /admin/kafka/faults lists it.
type ActiveKafkaFault struct {
	KafkaFault
	Since time.Time `json:"since"`
	// Hits is how many requests the fault has answered so far.
	Hits int `json:"hits"`
	// Detail says what it did ("moved 6 partitions").
	Detail string `json:"detail,omitempty"`
}

// KafkaFaults applies protocol faults to one kfake cluster. It is safe for
// concurrent use.
type KafkaFaults struct {
	c     *kfake.Cluster
	log   *slog.Logger
	nodes *embedded.Nodes

	mu     sync.Mutex
	active map[string]*kafkaFault
}

type kafkaFault struct {
	ActiveKafkaFault
	handle *kfake.FaultHandle
	heal   func() error // after the handle is removed
}

// NewKafkaFaults controls c; nodes are its nodes' listeners in node order.
func NewKafkaFaults(c *kfake.Cluster, nodes *embedded.Nodes, log *slog.Logger) *KafkaFaults {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &KafkaFaults{c: c, nodes: nodes, log: log, active: map[string]*kafkaFault{}}
}

// Request keys a fault answers.
var (
	produceKeys = []kmsg.Key{kmsg.Produce}
	leaderKeys  = []kmsg.Key{kmsg.Produce, kmsg.Fetch, kmsg.ListOffsets, kmsg.OffsetForLeaderEpoch, kmsg.DeleteRecords}
	groupKeys   = []kmsg.Key{kmsg.Heartbeat, kmsg.JoinGroup, kmsg.SyncGroup, kmsg.LeaveGroup, kmsg.OffsetCommit,
		kmsg.OffsetFetch, kmsg.TxnOffsetCommit, kmsg.ConsumerGroupHeartbeat}
)

// Apply puts a fault in force.
func (f *KafkaFaults) Apply(req KafkaFault) (ActiveKafkaFault, error) {
	if req.ID == "" {
		return ActiveKafkaFault{}, errors.New("id: required (the lab's fault id)")
	}
	if req.Fraction == 0 {
		req.Fraction = 1
	}
	if req.Fraction < 0 || req.Fraction > 1 {
		return ActiveKafkaFault{}, fmt.Errorf("fraction: must be more than 0 and at most 1, got %v", req.Fraction)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, dup := f.active[req.ID]; dup {
		return ActiveKafkaFault{}, fmt.Errorf("id: fault %s is already active", req.ID)
	}
	kf := &kafkaFault{ActiveKafkaFault: ActiveKafkaFault{KafkaFault: req, Since: time.Now().UTC()}}
	var err error
	switch req.Kind {
	case KafkaNotEnoughReplicas:
		err = f.partitionFault(kf, produceKeys, kerr.NotEnoughReplicas)
	case KafkaProduceTimeout:
		e := kerr.RequestTimedOut
		switch req.Error {
		case "", kerr.RequestTimedOut.Message:
		case kerr.NotEnoughReplicasAfterAppend.Message:
			e = kerr.NotEnoughReplicasAfterAppend
		default:
			return ActiveKafkaFault{}, fmt.Errorf("error: want %s or %s, got %q", kerr.RequestTimedOut.Message, kerr.NotEnoughReplicasAfterAppend.Message, req.Error)
		}
		err = f.partitionFault(kf, produceKeys, e)
	case KafkaLeaderElection:
		if err = f.partitionFault(kf, leaderKeys, kerr.NotLeaderForPartition); err == nil {
			kf.heal = func() error { return f.electLeaders(kf) }
		}
	case KafkaCoordinatorMove:
		err = f.coordinatorMove(kf)
	case KafkaNodeLoss:
		err = f.nodeLoss(kf)
	default:
		err = fmt.Errorf("kind: unknown Kafka fault %q (valid: %s, %s, %s, %s, %s)", req.Kind,
			KafkaNotEnoughReplicas, KafkaProduceTimeout, KafkaLeaderElection, KafkaCoordinatorMove, KafkaNodeLoss)
	}
	if err != nil {
		return ActiveKafkaFault{}, err
	}
	f.active[req.ID] = kf
	f.log.Info("kafka protocol fault applied", "id", req.ID, "kind", req.Kind, "topic", req.Topic, "partition", req.Partition,
		"group", req.Group, "node", req.Node, "fraction", req.Fraction, "detail", kf.Detail)
	return kf.snapshot(), nil
}

// ErrUnknownFault is Heal's answer for an id that is not active.
var ErrUnknownFault = errors.New("no such Kafka fault")

// Heal ends a fault: its answers stop, and leader_election moves the leaders,
// coordinator_move lets the group's requests through, node_loss adds the
// node back.
func (f *KafkaFaults) Heal(id string) (ActiveKafkaFault, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	kf, ok := f.active[id]
	if !ok {
		return ActiveKafkaFault{}, fmt.Errorf("%w %q", ErrUnknownFault, id)
	}
	delete(f.active, id)
	snap := kf.snapshot()
	if kf.handle != nil {
		kf.handle.Remove()
	}
	var err error
	if kf.heal != nil {
		err = kf.heal()
	}
	f.log.Info("kafka protocol fault healed", "id", id, "kind", kf.Kind, "hits", snap.Hits, "detail", kf.Detail, "error", fmt.Sprint(err))
	snap.Detail = kf.Detail
	return snap, err
}

// Active lists the faults in force, oldest first.
func (f *KafkaFaults) Active() []ActiveKafkaFault {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]ActiveKafkaFault, 0, len(f.active))
	for _, kf := range f.active {
		out = append(out, kf.snapshot())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Since.Before(out[j].Since) })
	return out
}

// HealAll ends every fault (the broker is stopping).
func (f *KafkaFaults) HealAll() {
	for _, a := range f.Active() {
		_, _ = f.Heal(a.ID)
	}
}

func (kf *kafkaFault) snapshot() ActiveKafkaFault {
	s := kf.ActiveKafkaFault
	if kf.handle != nil {
		s.Hits = kf.handle.Hits()
	}
	return s
}

// partitions resolves the request's topic and partition.
func (f *KafkaFaults) partitions(req KafkaFault) ([]int32, error) {
	if req.Topic == "" {
		return nil, errors.New("topic: required")
	}
	infos := f.c.PartitionInfos(req.Topic)
	if len(infos) == 0 {
		return nil, fmt.Errorf("topic: %q does not exist on the broker", req.Topic)
	}
	if req.Partition < 0 {
		return nil, nil // all
	}
	if int(req.Partition) >= len(infos) {
		return nil, fmt.Errorf("partition: %s has partitions 0..%d, not %d", req.Topic, len(infos)-1, req.Partition)
	}
	return []int32{req.Partition}, nil
}

// partitionFault answers matching requests for the request's partitions
// with e until healed.
func (f *KafkaFaults) partitionFault(kf *kafkaFault, keys []kmsg.Key, e *kerr.Error) error {
	ps, err := f.partitions(kf.KafkaFault)
	if err != nil {
		return err
	}
	kf.handle = f.c.Fault(kfake.Fault{Keys: keys, Topic: kf.Topic, Partitions: ps, Err: e, Count: -1, When: sample(kf.Fraction)})
	kf.Detail = fmt.Sprintf("%s answered %s", describeKeys(keys), e.Message)
	return nil
}

// sample faults a fraction of requests (nil: all).
func sample(fraction float64) func(kmsg.Request) bool {
	if fraction >= 1 {
		return nil
	}
	return func(kmsg.Request) bool { return rand.Float64() < fraction }
}

func describeKeys(keys []kmsg.Key) string {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = kmsg.NameForKey(int16(k))
	}
	return fmt.Sprint(names)
}

// electLeaders ends a leader election: every faulted partition gets a new
// leader epoch, and a new leader on another node when there is one.
func (f *KafkaFaults) electLeaders(kf *kafkaFault) error {
	ps, err := f.partitions(kf.KafkaFault)
	if err != nil {
		return err
	}
	if ps == nil {
		for _, pi := range f.c.PartitionInfos(kf.Topic) {
			ps = append(ps, pi.Partition)
		}
	}
	up := f.nodes.UpIDs()
	moved := 0
	for _, p := range ps {
		leader := f.c.LeaderFor(kf.Topic, p)
		to := leader
		if others := slices.DeleteFunc(slices.Clone(up), func(id int32) bool { return id == leader }); len(others) > 0 {
			to = others[rand.IntN(len(others))]
		}
		if err := f.c.MoveTopicPartition(kf.Topic, p, to); err != nil {
			return fmt.Errorf("elect a leader for %s/%d: %w", kf.Topic, p, err)
		}
		if to != leader {
			moved++
		}
	}
	kf.Detail += fmt.Sprintf("; new leader epochs for %d partition(s), %d moved to another node", len(ps), moved)
	return nil
}

// coordinatorMove rehashes the coordinators (a real move on a multi-node
// broker) and answers the group's requests NOT_COORDINATOR until healed.
func (f *KafkaFaults) coordinatorMove(kf *kafkaFault) error {
	if kf.Group == "" {
		return errors.New("group: required")
	}
	before := f.c.CoordinatorFor(kf.Group)
	f.c.RehashCoordinators()
	after := f.c.CoordinatorFor(kf.Group)
	kf.handle = f.c.Fault(kfake.Fault{Keys: groupKeys, Group: kf.Group, Err: kerr.NotCoordinator, Count: -1, When: sample(kf.Fraction)})
	kf.Detail = fmt.Sprintf("coordinator of %s: node %d → node %d; group requests answered NOT_COORDINATOR", kf.Group, before, after)
	return nil
}

// nodeLoss removes a node (listener and connections closed); healing adds
// it back on the same port.
func (f *KafkaFaults) nodeLoss(kf *kafkaFault) error {
	n := f.nodes.Count()
	if n < 2 {
		return fmt.Errorf("node: this broker runs one node; node loss needs a multi-node embedded broker (lab up --kafka-nodes 3)")
	}
	if kf.Node < 1 || kf.Node > n {
		return fmt.Errorf("node: want 1..%d, got %d", n, kf.Node)
	}
	id, port := f.nodes.ID(kf.Node), f.nodes.Port(kf.Node)
	if len(f.nodes.UpIDs()) < 2 {
		return errors.New("node: only one node is up; removing it would leave no broker")
	}
	if !f.nodes.IsUp(kf.Node) {
		return fmt.Errorf("node: broker-%d is already down", kf.Node)
	}
	if err := f.c.RemoveNode(id); err != nil {
		return fmt.Errorf("remove node %d: %w", id, err)
	}
	closed := f.nodes.Down(kf.Node)
	kf.Detail = fmt.Sprintf("broker-%d (node id %d, port %d) removed, %d connection(s) closed; partitions and coordinators moved to the other nodes", kf.Node, id, port, closed)
	kf.heal = func() error {
		if _, _, err := f.c.AddNode(id, port); err != nil {
			return fmt.Errorf("add broker-%d back on port %d: %w", kf.Node, port, err)
		}
		f.nodes.Up(kf.Node)
		kf.Detail += "; added back"
		return nil
	}
	return nil
}

// RegisterKafkaFaults adds the protocol-fault endpoints to the broker's
// admin listener (loopback only, like every /admin/ endpoint):
//
//	GET    /admin/kafka/faults        the faults in force and the nodes
//	POST   /admin/kafka/faults        KafkaFault → 200 ActiveKafkaFault, 400 with the bad field
//	DELETE /admin/kafka/faults/{id}   heals; 404 when not active (a restarted broker forgot it)
func RegisterKafkaFaults(handle func(pattern string, h http.Handler), f *KafkaFaults) {
	handle("GET /admin/kafka/faults", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"faults": f.Active(), "nodes": f.nodes.Status()})
	}))
	handle("POST /admin/kafka/faults", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req KafkaFault
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body: " + err.Error()})
			return
		}
		a, err := f.Apply(req)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, a)
	}))
	handle("DELETE /admin/kafka/faults/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := f.Heal(r.PathValue("id"))
		switch {
		case errors.Is(err, ErrUnknownFault):
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		case err != nil:
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		default:
			writeJSON(w, http.StatusOK, a)
		}
	}))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
