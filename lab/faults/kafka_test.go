package faults

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/ratingslab/lab/services/lib/kafkaio/embedded"

	"github.com/ratingslab/lab/lab/broker"
	"github.com/ratingslab/lab/lab/supervisor"
	"github.com/ratingslab/lab/services/lib/serve"
)

// brokerAdmin runs the embedded broker (one node) with its admin listener,
// as `lab serve broker --admin-listen` does, and returns the admin address.
func brokerAdmin(t *testing.T) (admin string, stop func()) {
	t.Helper()
	kl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	kafkaAddr := kl.Addr().String()
	kl.Close()
	c, nodes, err := embedded.StartNodes([]string{kafkaAddr}, "", false)
	if err != nil {
		t.Fatal(err)
	}
	kf := broker.NewKafkaFaults(c, nodes, nil)
	srv := serve.New(serve.Options{})
	broker.RegisterKafkaFaults(srv.HandleAdmin, kf)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx, nil, ln) }()
	stop = func() { cancel(); <-done; c.Close() }
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			stop()
		}
	})
	return ln.Addr().String(), stop
}

func brokerFaults(t *testing.T, admin string) []broker.ActiveKafkaFault {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/admin/kafka/faults")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Faults []broker.ActiveKafkaFault `json:"faults"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	return got.Faults
}

// A protocol fault goes to the broker with the injector's id and parameters,
// and healing removes exactly it.
func TestKafkaFaultsReachTheBrokerAndHeal(t *testing.T) {
	admin, _ := brokerAdmin(t)
	inj := New(Config{Targets: Targets{Kafka: map[string]string{"broker": admin}, Variants: map[string]string{"broker": "lab"}}})
	ctx := context.Background()
	f, err := inj.Inject(ctx, Request{Fault: "produce_timeout", Target: "broker", Params: ParamValues{"partition": "2", "fraction": "0.5"}})
	if err != nil {
		t.Fatal(err)
	}
	active := brokerFaults(t, admin)
	if len(active) != 1 || active[0].ID != f.ID || active[0].Kind != "produce_timeout" || active[0].Topic != "ratings" ||
		active[0].Partition != 2 || active[0].Fraction != 0.5 || active[0].Error != "REQUEST_TIMED_OUT" {
		t.Fatalf("broker holds %+v, want the injected produce_timeout", active)
	}
	if _, err := inj.Heal(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	if active := brokerFaults(t, admin); len(active) != 0 {
		t.Fatalf("still active after the heal: %+v", active)
	}
}

// The broker's refusal reaches the user with its reason, and nothing stays
// active; a broker that forgot a fault (restarted) heals without error.
func TestKafkaFaultErrorsAndAForgettingBroker(t *testing.T) {
	admin, stop := brokerAdmin(t)
	inj := New(Config{Targets: Targets{Kafka: map[string]string{"broker": admin}, Variants: map[string]string{"broker": "lab"}}})
	ctx := context.Background()
	_, err := inj.Inject(ctx, Request{Fault: "node_loss", Target: "broker", Params: ParamValues{"node": "2"}})
	if err == nil || !strings.Contains(err.Error(), "multi-node") {
		t.Fatalf("node_loss on a one-node broker: %v, want the broker's reason", err)
	}
	if len(inj.Active()) != 0 {
		t.Fatalf("a refused fault stays active: %+v", inj.Active())
	}
	if _, err := inj.Inject(ctx, Request{Fault: "produce_timeout", Target: "ratings"}); err == nil {
		t.Fatal("a protocol fault accepted a topic as its target")
	}
	f, err := inj.Inject(ctx, Request{Fault: "not_enough_replicas", Target: "broker"})
	if err != nil {
		t.Fatal(err)
	}
	stop()
	admin2, _ := brokerAdmin(t) // a restarted broker: it never heard of the fault
	inj.cfg.Targets.Kafka["broker"] = admin2
	if h, err := inj.Heal(ctx, f.ID); err != nil || h.HealError != "" {
		t.Fatalf("heal after the broker forgot the fault: %+v, %v", h, err)
	}
}

// On a lab without an embedded broker (a real cluster) protocol faults are
// refused with what to do instead.
func TestKafkaFaultsNeedTheEmbeddedBroker(t *testing.T) {
	_, _, _, err := Validate(Request{Fault: "leader_election", Target: "broker"}, Targets{Parts: []string{"broker-1", "broker-2"}})
	if err == nil || !strings.Contains(err.Error(), "kill or pause a broker-N") {
		t.Fatalf("leader_election on a cluster: %v", err)
	}
}

// signals records the process actions a fault asks the supervisor for.
type signals struct{ got []string }

func (s *signals) Signal(_ context.Context, part string, action supervisor.Action) (supervisor.PartStatus, error) {
	s.got = append(s.got, string(action)+" "+part)
	return supervisor.PartStatus{Name: part}, nil
}

// On a multi-node embedded broker the leader and the coordinator are nodes
// of the one part "broker": kill_leader and kill_coordinator kill that part
// (there is no broker-N process to kill).
func TestKillLeaderAndCoordinatorOnAMultiNodeEmbeddedBroker(t *testing.T) {
	var addrs []string
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		ln.Close()
	}
	c, _, err := embedded.StartNodes(addrs, "", false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	procs := &signals{}
	inj := New(Config{Processes: procs, Brokers: addrs, Targets: Targets{Platform: "embedded", KafkaNodes: 3,
		Topics: []string{"ratings"}, Groups: []string{"ratings-stream"}, Parts: []string{"broker"}, Variants: map[string]string{"broker": "lab"}}})
	ctx := context.Background()
	for _, req := range []Request{{Fault: "kill_leader", Target: "ratings"}, {Fault: "kill_coordinator", Target: "ratings-stream"}} {
		f, err := inj.Inject(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(f.Outcome, "killed broker,") {
			t.Errorf("%s: outcome %q, want the part broker named", req.Fault, f.Outcome)
		}
		if _, err := inj.Heal(ctx, f.ID); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"kill broker", "start broker", "kill broker", "start broker"}; strings.Join(procs.got, "; ") != strings.Join(want, "; ") {
		t.Fatalf("supervisor asked %v, want %v", procs.got, want)
	}
}

// A protocol fault posted to the broker by hand shows among the faults set
// outside the lab; the injector's own does not.
func TestKafkaFaultsSetOutsideTheLabAreReported(t *testing.T) {
	admin, _ := brokerAdmin(t)
	inj := New(Config{Targets: Targets{Kafka: map[string]string{"broker": admin}, Variants: map[string]string{"broker": "lab"}}})
	ctx := context.Background()
	if _, err := inj.Inject(ctx, Request{Fault: "not_enough_replicas", Target: "broker"}); err != nil {
		t.Fatal(err)
	}
	res, err := http.Post("http://"+admin+"/admin/kafka/faults", "application/json",
		strings.NewReader(`{"id":"by-hand","kind":"produce_timeout","topic":"ratings","partition":-1}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("POST by hand: %s", res.Status)
	}
	ext := inj.External(ctx)
	if len(ext) != 1 || ext[0].Kind != "produce_timeout" || ext[0].Target != "broker" || !strings.Contains(ext[0].Detail, "by-hand") {
		t.Fatalf("faults set outside the lab: %+v, want only the produce_timeout posted by hand", ext)
	}
}
