package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/services/model"
)

// The log variant with Kafka transactions (lab up --delivery=transactional)
// on the platform under test — the embedded broker with three nodes in the
// first pass of make test, three Apache Kafka nodes in the second:
//
//   - ratings-stream's database is only a cache: killed (kill -9) and its
//     data directory deleted, it restores its state from the changelog and
//     the view converges to exactly the acknowledged ratings;
//   - the experiments whose faults exist on both platforms run, and their
//     journals name the platform that ran them; the embedded broker gets
//     the protocol-level fault, a cluster the broker fault;
//   - whatever a fault does to availability, no acknowledged rating is lost
//     or counted twice (lab audit, once the lab recovered).
func TestTransactionalDeliveryAndPlatformFaults(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	t.Parallel()
	args := []string{"--no-prometheus", "--delivery=transactional"}
	if !labtest.OnCluster() {
		args = append(args, "--kafka-nodes", "3")
	}
	l := labtest.Start(t, args...)
	base := "http://" + l.Ports.WebserverStream()
	var st struct {
		Delivery string `json:"delivery"`
	}
	if code, err := labtest.HTTPJSON(http.MethodGet, "http://"+l.Ports.RatingsStream(0)+"/state", nil, &st); err != nil || code != 200 || st.Delivery != "transactional" {
		t.Fatalf("GET /state: %d %v %+v; want delivery transactional", code, err, st)
	}

	if !labtest.OnCluster() {
		// As on a cluster (TestClusterFaults): every client reaches every
		// node only through its own per-node proxy, and a client cut from
		// one node still writes to the partitions the others lead.
		t.Run("per-node edges", func(t *testing.T) {
			st := assertOwnNodeEdges(t, l)
			if n := len(st.Options.KafkaBootstrap(l.Ports)); n != 3 {
				t.Fatalf("%d nodes, want three", n)
			}
			// The embedded broker picks each partition's leader at random:
			// cut the client from a node that leads some partitions of
			// ratings, not all (asking which, rather than assuming broker-1).
			node := nodeLeadingSomeRatingsPartitions(t, st.Options.KafkaBootstrap(l.Ports))
			out := l.MustRun("chaos", "inject", "partition", "--target", "webserver-stream->"+node, "--for", "20s")
			ok, failed := 0, 0
			for m := int64(1); m <= 24; m++ {
				switch code, _ := postRating(t, base, m, 7, fmt.Sprintf("cut-%d", m)); {
				case code == http.StatusAccepted:
					ok++
				default:
					failed++
				}
			}
			l.MustRun("chaos", "heal", regexp.MustCompile(`f-\d+`).FindString(out))
			if ok == 0 || failed == 0 {
				t.Errorf("webserver-stream cut from %s: %d accepted, %d failed; want both (%s leads some partitions, not all)", node, ok, failed, node)
			}
		})
	}

	t.Run("state restored from the changelog", func(t *testing.T) {
		e := newExpected()
		for i := range 150 {
			postStreamUntilAccepted(t, base, e, int64(30+i%12), int64(10+(i*13)%91), fmt.Sprintf("txn-a-%d", i))
		}
		labtest.Eventually(t, 30*time.Second, "the view to converge", func() error { return e.converged(t, base) })
		l.Action("ratings-stream", "kill")
		if err := os.RemoveAll(l.Dir.Data("ratings-stream")); err != nil {
			t.Fatal(err)
		}
		for i := range 100 {
			postStreamUntilAccepted(t, base, e, int64(30+i%12), int64(10+(i*17)%91), fmt.Sprintf("txn-b-%d", i))
		}
		l.Action("ratings-stream", "start")
		l.WaitPart("ratings-stream", "healthy", 60*time.Second)
		labtest.Eventually(t, 30*time.Second, "the view to converge after the restore", func() error { return e.converged(t, base) })
		var after struct {
			Movies []struct {
				MovieID int64 `json:"movie_id"`
				Count   int64 `json:"count"`
			} `json:"movies"`
		}
		labtest.Eventually(t, 10*time.Second, "the rebuilt database to hold the restored counts", func() error {
			if _, err := labtest.HTTPJSON(http.MethodGet, "http://"+l.Ports.RatingsStream(0)+"/state", nil, &after); err != nil {
				return err
			}
			counts := map[int64]int64{}
			for _, m := range after.Movies {
				counts[m.MovieID] = m.Count
			}
			e.mu.Lock()
			defer e.mu.Unlock()
			for movie, n := range e.count {
				if counts[movie] != n {
					return fmt.Errorf("movie %d: the database has %d, want %d", movie, counts[movie], n)
				}
			}
			return nil
		})
	})

	wantPlatform := "embedded (kfake, 3 nodes)"
	if labtest.OnCluster() {
		wantPlatform = "cluster (Apache Kafka, 3 nodes)"
	}
	runs := []struct{ name, file string }{
		{"ambiguous-writes", shortened(t, "ambiguous-writes", 0.5)},
		{"coordinator-failover", shortened(t, "coordinator-failover", 0.5)},
		{"broker-minority-outage", minorityOutage(t)},
	}
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			j := runLogExperiment(t, l, r.name, r.file)
			if j.Platform != wantPlatform {
				t.Errorf("journal platform %q, want %q", j.Platform, wantPlatform)
			}
			for _, f := range j.Faults {
				// The embedded broker took a protocol fault; a cluster a broker fault.
				if hit := strings.Join(f.Targets, " "); labtest.OnCluster() == (hit == "broker") {
					t.Errorf("%s hit %q on %s", r.name, hit, wantPlatform)
				}
			}
		})
	}
}

// minorityOutage is an experiment losing one broker of three for 10 s: node
// 3 of the embedded broker (node_loss), or broker-3 of a cluster (kill).
func minorityOutage(t *testing.T) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "minority.yaml")
	err := os.WriteFile(file, []byte(`title: One broker of three lost
load: {scenario: steady, rate: 50, duration: 35s}
steady_state:
  warmup: 3s
  recovery: 10s
  probes:
    - probe: lost_writes
    - probe: duplicates
method:
  - fault: broker-minority-outage
    at: 8s
    for: 10s
drain: 20s
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return file
}

// nodeLeadingSomeRatingsPartitions asks the cluster (Metadata) which node
// leads which partition of ratings and names, as a part (broker-<id+1>),
// a node that leads at least one of them and not all.
func nodeLeadingSomeRatingsPartitions(t *testing.T, bootstrap []string) string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	topic := kmsg.NewMetadataRequestTopic()
	topic.Topic = kmsg.StringPtr(model.TopicRatings)
	req.Topics = append(req.Topics, topic)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Topics) != 1 {
		t.Fatalf("metadata of %s: %v", model.TopicRatings, err)
	}
	led := map[int32]int{}
	for _, p := range resp.Topics[0].Partitions {
		led[p.Leader]++
	}
	total := len(resp.Topics[0].Partitions)
	for id := int32(0); id < int32(len(bootstrap)); id++ {
		if n := led[id]; n > 0 && n < total {
			return fmt.Sprintf("broker-%d", id+1)
		}
	}
	t.Skipf("one node leads all %d partitions of %s (leaders %v): no node leads some and not all", total, model.TopicRatings, led)
	return ""
}
