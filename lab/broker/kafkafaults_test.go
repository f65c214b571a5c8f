package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ratingslab/lab/services/lib/kafkaio/embedded"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
)

// startBroker runs the lab's broker with n nodes on free loopback ports.
func startBroker(t *testing.T, n int) (*kfake.Cluster, *KafkaFaults, []string) {
	t.Helper()
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		ln.Close()
	}
	c, nodes, err := embedded.StartNodes(addrs, "", false)
	if err != nil {
		t.Fatal(err)
	}
	f := NewKafkaFaults(c, nodes, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { f.HealAll(); c.Close() })
	return c, f, addrs
}

func writer(addrs []string, attempts int) *kafka.Writer {
	return &kafka.Writer{Addr: kafka.TCP(addrs...), Topic: model.TopicRatings, Balancer: &kafka.CRC32Balancer{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, MaxAttempts: attempts,
		WriteBackoffMin: 10 * time.Millisecond, WriteBackoffMax: 50 * time.Millisecond}
}

func produceKey(t *testing.T, w *kafka.Writer, key string) error {
	t.Helper()
	return w.WriteMessages(servetest.Context(t, 10*time.Second), kafka.Message{Key: []byte(key), Value: []byte(`{}`)})
}

func isKafkaError(err error, want kafka.Error) bool {
	var we kafka.WriteErrors
	if errors.As(err, &we) {
		for _, e := range we {
			if errors.Is(e, want) {
				return true
			}
		}
	}
	return errors.Is(err, want)
}

// endOffset is the high watermark of a ratings partition.
func endOffset(c *kfake.Cluster, p int32) int64 {
	return c.PartitionInfo(model.TopicRatings, p).HighWatermark
}

func TestNotEnoughReplicasRefusesTheWriteAndAppendsNothing(t *testing.T) {
	c, f, addrs := startBroker(t, 1)
	w := writer(addrs, 1)
	defer w.Close()
	p := int32(model.RatingPartition([]byte("7"), model.RatingsPartitions))
	if _, err := f.Apply(KafkaFault{ID: "f-1", Kind: KafkaNotEnoughReplicas, Topic: model.TopicRatings, Partition: -1}); err != nil {
		t.Fatal(err)
	}
	before := endOffset(c, p)
	if err := produceKey(t, w, "7"); !isKafkaError(err, kafka.NotEnoughReplicas) {
		t.Fatalf("produce during the fault: %v, want NOT_ENOUGH_REPLICAS", err)
	}
	if after := endOffset(c, p); after != before {
		t.Fatalf("partition %d grew from %d to %d: a refused write was appended", p, before, after)
	}
	if _, err := f.Heal("f-1"); err != nil {
		t.Fatal(err)
	}
	if err := produceKey(t, w, "7"); err != nil {
		t.Fatalf("produce after the heal: %v", err)
	}
}

// The ambiguous write: the producer is told the write timed out, and the
// record is in the log all the same — once per attempt.
func TestProduceTimeoutAppendsAndAnswersTimedOut(t *testing.T) {
	c, f, addrs := startBroker(t, 1)
	p := int32(model.RatingPartition([]byte("7"), model.RatingsPartitions))
	if _, err := f.Apply(KafkaFault{ID: "f-1", Kind: KafkaProduceTimeout, Topic: model.TopicRatings, Partition: p}); err != nil {
		t.Fatal(err)
	}
	w := writer(addrs, 3)
	defer w.Close()
	before := endOffset(c, p)
	if err := produceKey(t, w, "7"); !isKafkaError(err, kafka.RequestTimedOut) {
		t.Fatalf("produce during the fault: %v, want REQUEST_TIMED_OUT", err)
	}
	if grew := endOffset(c, p) - before; grew != 3 {
		t.Fatalf("partition %d grew by %d, want 3: every attempt of the non-idempotent producer was appended", p, grew)
	}
	if hits := f.Active()[0].Hits; hits != 3 {
		t.Errorf("fault hits %d, want 3", hits)
	}
	// Other partitions are not touched.
	other := "1"
	for k := 1; model.RatingPartition([]byte(other), model.RatingsPartitions) == int(p); k++ {
		other = fmt.Sprint(k)
	}
	if err := produceKey(t, w, other); err != nil {
		t.Fatalf("produce to another partition: %v", err)
	}
}

func TestLeaderElectionRefusesUntilHealedThenMovesLeaders(t *testing.T) {
	c, f, addrs := startBroker(t, 3)
	epochs := map[int32]int32{}
	for _, pi := range c.PartitionInfos(model.TopicRatings) {
		epochs[pi.Partition] = pi.Epoch
	}
	if _, err := f.Apply(KafkaFault{ID: "f-1", Kind: KafkaLeaderElection, Topic: model.TopicRatings, Partition: -1}); err != nil {
		t.Fatal(err)
	}
	w := writer(addrs, 1)
	defer w.Close()
	if err := produceKey(t, w, "7"); !isKafkaError(err, kafka.NotLeaderForPartition) {
		t.Fatalf("produce during the election: %v, want NOT_LEADER_OR_FOLLOWER", err)
	}
	leaders := map[int32]int32{}
	for _, pi := range c.PartitionInfos(model.TopicRatings) {
		leaders[pi.Partition] = pi.Leader
	}
	healed, err := f.Heal("f-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, pi := range c.PartitionInfos(model.TopicRatings) {
		if pi.Epoch <= epochs[pi.Partition] {
			t.Errorf("partition %d kept leader epoch %d", pi.Partition, pi.Epoch)
		}
		if pi.Leader == leaders[pi.Partition] {
			t.Errorf("partition %d kept leader %d though two other nodes are up", pi.Partition, pi.Leader)
		}
	}
	if !strings.Contains(healed.Detail, "6 moved") {
		t.Errorf("detail %q does not say the leaders moved", healed.Detail)
	}
	// A producer with fresh metadata finds the new leaders (kafka-go's
	// shared default transport would keep the old ones until its metadata
	// TTL runs out).
	w2 := writer(addrs, 1)
	w2.Transport = &kafka.Transport{}
	defer w2.Close()
	if err := produceKey(t, w2, "7"); err != nil {
		t.Fatalf("produce after the election: %v", err)
	}
}

func TestCoordinatorMoveAnswersNotCoordinatorUntilHealed(t *testing.T) {
	_, f, addrs := startBroker(t, 1)
	client := &kafka.Client{Addr: kafka.TCP(addrs[0]), Timeout: 5 * time.Second}
	commit := func() error {
		res, err := client.OffsetCommit(servetest.Context(t, 10*time.Second), &kafka.OffsetCommitRequest{GroupID: "g", GenerationID: -1,
			Topics: map[string][]kafka.OffsetCommit{model.TopicRatings: {{Partition: 0, Offset: 1}}}})
		if err != nil {
			return err
		}
		return res.Topics[model.TopicRatings][0].Error
	}
	if _, err := f.Apply(KafkaFault{ID: "f-1", Kind: KafkaCoordinatorMove, Group: "g"}); err != nil {
		t.Fatal(err)
	}
	if err := commit(); !errors.Is(err, kafka.NotCoordinatorForGroup) {
		t.Fatalf("offset commit during the move: %v, want NOT_COORDINATOR", err)
	}
	if _, err := f.Heal("f-1"); err != nil {
		t.Fatal(err)
	}
	if err := commit(); err != nil {
		t.Fatalf("offset commit after the move: %v", err)
	}
}

// A lost node drops its clients and takes its partitions to the other
// nodes; writes go on there; healing brings it back on its port.
func TestNodeLossClosesTheNodeAndHealingBringsItBack(t *testing.T) {
	_, f, addrs := startBroker(t, 3)
	conn, err := net.Dial("tcp", addrs[1])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Let the broker accept it before the node goes.
	servetest.WaitFor(t, 5*time.Second, "the connection accepted", func() (bool, string) {
		return f.nodes.Connections(2) == 1, ""
	})
	a, err := f.Apply(KafkaFault{ID: "f-1", Kind: KafkaNodeLoss, Node: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", addrs[1], time.Second); err == nil {
		t.Fatal("broker-2 still accepts connections")
	}
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		t.Fatalf("a client connection to broker-2 stays open: %v", err)
	}
	md, err := (&kafka.Client{Addr: kafka.TCP(addrs[0]), Timeout: 5 * time.Second}).Metadata(servetest.Context(t, 5*time.Second), &kafka.MetadataRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Brokers) != 2 {
		t.Fatalf("metadata lists %d brokers, want 2: %+v", len(md.Brokers), md.Brokers)
	}
	w := writer([]string{addrs[0]}, 5)
	defer w.Close()
	if err := produceKey(t, w, "7"); err != nil {
		t.Fatalf("produce with a node lost: %v", err)
	}
	if _, err := f.Apply(KafkaFault{ID: "f-2", Kind: KafkaNodeLoss, Node: 2}); err == nil {
		t.Fatal("a node already down could be lost again")
	}
	if _, err := f.Heal(a.ID); err != nil {
		t.Fatal(err)
	}
	c2, err := net.DialTimeout("tcp", addrs[1], time.Second)
	if err != nil {
		t.Fatalf("broker-2 not back on %s: %v", addrs[1], err)
	}
	c2.Close()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func readAll(res *http.Response) string {
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func TestNodeLossNeedsSeveralNodes(t *testing.T) {
	_, f, _ := startBroker(t, 1)
	_, err := f.Apply(KafkaFault{ID: "f-1", Kind: KafkaNodeLoss, Node: 1})
	if err == nil || !strings.Contains(err.Error(), "multi-node") {
		t.Fatalf("node loss on one node: %v, want a refusal naming the multi-node broker", err)
	}
}

func TestAdminEndpointValidatesAndHeals(t *testing.T) {
	_, f, _ := startBroker(t, 1)
	mux := http.NewServeMux()
	RegisterKafkaFaults(mux.Handle, f)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	post := func(body string) (int, string) {
		res, err := http.Post(srv.URL+"/admin/kafka/faults", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b strings.Builder
		fmt.Fprint(&b, readAll(res))
		return res.StatusCode, b.String()
	}
	for _, tc := range []struct{ body, want string }{
		{`{"id":"f-1","kind":"nope"}`, "kind: unknown"},
		{`{"id":"f-1","kind":"not_enough_replicas","topic":"nope","partition":-1}`, "topic"},
		{`{"id":"f-1","kind":"not_enough_replicas","topic":"ratings","partition":6}`, "partition"},
		{`{"id":"f-1","kind":"produce_timeout","topic":"ratings","partition":-1,"error":"OOPS"}`, "error: want"},
		{`{"id":"f-1","kind":"produce_timeout","topic":"ratings","partition":-1,"fraction":2}`, "fraction"},
		{`{"id":"f-1","kind":"coordinator_move"}`, "group"},
		{`{"kind":"coordinator_move","group":"g"}`, "id"},
		{`{"id":"f-1","kind":"coordinator_move","group":"g","extra":1}`, "unknown field"},
	} {
		if code, body := post(tc.body); code != http.StatusBadRequest || !strings.Contains(body, tc.want) {
			t.Errorf("POST %s = %d %s, want 400 naming %q", tc.body, code, body, tc.want)
		}
	}
	if len(f.Active()) != 0 {
		t.Fatalf("a refused request left a fault: %+v", f.Active())
	}
	if code, body := post(`{"id":"f-9","kind":"not_enough_replicas","topic":"ratings","partition":-1}`); code != http.StatusOK {
		t.Fatalf("valid POST = %d %s", code, body)
	}
	del := func(id string) int {
		req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/admin/kafka/faults/"+id, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := del("f-9"); code != http.StatusOK {
		t.Fatalf("DELETE f-9 = %d", code)
	}
	if code := del("f-9"); code != http.StatusNotFound {
		t.Fatalf("DELETE f-9 again = %d, want 404", code)
	}
}
