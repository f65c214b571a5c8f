package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratingslab/lab/services/lib/serve"
)

// A step that is not held says why: what the generator saw fail, and what
// the variant's own parts counted — here a part whose bulkhead takes one
// request at a time and queues none, so every rating that arrives while
// one is being served is answered 503 by the bulkhead.
func TestAStepNamesWhatThePartsRefused(t *testing.T) {
	part := serve.New(serve.Options{Public: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
		w.WriteHeader(http.StatusCreated)
	})})
	if err := part.SetLimits(serve.Limits{MaxInflight: 1, MaxQueue: 0, QueueTimeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	public := httptest.NewServer(part)
	defer public.Close()
	admin := httptest.NewServer(part.Admin())
	defer admin.Close()
	// A shared process with counters of its own must not be charged to
	// the variant.
	shared := httptest.NewServer(part.Admin())
	defer shared.Close()

	res, err := Run(context.Background(), Config{
		Phase: "variant", Targets: []Target{{Variant: "rpc", URL: public.URL}},
		Procs: func() []Proc {
			return []Proc{
				{Name: "webserver-rpc", Variant: "rpc", Metrics: admin.URL + "/metrics"},
				{Name: "supervisor", Metrics: shared.URL + "/metrics"},
				{Name: "gone-rpc", Variant: "rpc", Metrics: "http://127.0.0.1:1/metrics"},
			}
		},
		Search: SearchConfig{Start: 100, Factor: 2, Precision: 0.1, MaxSteps: 1},
		Step:   time.Second, MaxP99: 10 * time.Second, MinSuccess: 0.999,
	})
	if err != nil {
		t.Fatal(err)
	}
	st := res[0].Steps[0]
	failed := st.Failures["5xx"]
	if st.Held || failed == 0 || failed != st.Scheduled-st.Acked {
		t.Fatalf("step: held %v, %d of %d acknowledged, failures %v; want not held, every other one a 5xx", st.Held, st.Acked, st.Scheduled, st.Failures)
	}
	want := map[string]uint64{"webserver-rpc: bulkhead queue_full": failed}
	if len(st.Refused) != 1 || st.Refused["webserver-rpc: bulkhead queue_full"] != failed {
		t.Fatalf("refused by the parts: %v, want %v (the generator's 5xx, counted by the part that answered them)", st.Refused, want)
	}
	if got := CountsLine(st.Refused); !strings.HasPrefix(got, "webserver-rpc: bulkhead queue_full ") {
		t.Errorf("line %q", got)
	}
}

func TestCountsLineIsLargestFirst(t *testing.T) {
	got := CountsLine(map[string]uint64{"a: x": 2, "b: y": 30, "c: z": 2})
	if want := "b: y 30, a: x 2, c: z 2"; got != want {
		t.Fatalf("CountsLine = %q, want %q", got, want)
	}
}

// The calls between parts come from the breaker's histogram and pool
// gauge: the count and mean of the calls made between two readings.
func TestCallsBetweenPartsAreTheHistogramsGrowth(t *testing.T) {
	bodies := []string{
		"lab_dependency_call_duration_seconds_count{dependency=\"ratings-rpc\",operation=\"write\"} 100\n" +
			"lab_dependency_call_duration_seconds_sum{dependency=\"ratings-rpc\",operation=\"write\"} 1\n" +
			"lab_dependency_pool_connections{dependency=\"ratings-rpc\"} 10\n",
		"lab_dependency_call_duration_seconds_count{dependency=\"ratings-rpc\",operation=\"write\"} 300\n" +
			"lab_dependency_call_duration_seconds_sum{dependency=\"ratings-rpc\",operation=\"write\"} 9\n" +
			"lab_dependency_call_duration_seconds_count{dependency=\"ratings-rpc\",operation=\"read\"} 100\n" +
			"lab_dependency_call_duration_seconds_sum{dependency=\"ratings-rpc\",operation=\"read\"} 2\n" +
			"lab_dependency_pool_connections{dependency=\"ratings-rpc\"} 10\n",
	}
	procs := []Proc{{Name: "webserver-rpc", Variant: "rpc", Metrics: metricsServer(t, func(read int) string {
		return "# TYPE lab_dependency_call_duration_seconds histogram\n# TYPE lab_dependency_pool_connections gauge\n" + bodies[min(read, 1)]
	})}}
	before, after := readParts(context.Background(), procs), readParts(context.Background(), procs)
	got := callsDuring(before, after, procs, "rpc")
	want := EdgeCalls{Part: "webserver-rpc", Dependency: "ratings-rpc", Calls: 300, MeanMs: 33.3, Pool: 10}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("calls %+v, want %+v (300 more calls, 10 s more: 33.3 ms each)", got, want)
	}
	if s := CallsLine(got); s != "webserver-rpc → ratings-rpc 300 at mean 33.3 ms (pool 10)" {
		t.Errorf("line %q", s)
	}
	if got := callsDuring(before, after, procs, "stream"); got != nil {
		t.Errorf("another variant's calls: %+v", got)
	}
}

// The log variant's failures inside its parts are Kafka writes that failed
// after their retries, by topic and error.
func TestFailedKafkaWritesAreCountedForTheLogVariant(t *testing.T) {
	procs := []Proc{{Name: "webserver-stream", Variant: "stream", Metrics: metricsServer(t, func(read int) string {
		return "# TYPE lab_kafka_produce_errors_total counter\n" +
			fmt.Sprintf("lab_kafka_produce_errors_total{topic=\"ratings\",error=\"NOT_ENOUGH_REPLICAS\"} %d\n", 5+7*read)
	})}}
	before, after := readParts(context.Background(), procs), readParts(context.Background(), procs)
	got := refusedDuring(before, after, procs, "stream")
	if len(got) != 1 || got["webserver-stream: produce to ratings failed NOT_ENOUGH_REPLICAS"] != 7 {
		t.Fatalf("refused %v, want the 7 writes that failed between the readings", got)
	}
}

// metricsServer serves body(n) as the n-th reading (from 0) of a part's
// /metrics, and returns its URL.
func metricsServer(t *testing.T, body func(read int) string) string {
	var reads atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(body(int(reads.Add(1) - 1))))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
