package load

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ratingslab/lab/services/lib/duration"
)

// scenarioAt is a shipped scenario changed to a constant rate and length.
func scenarioAt(t *testing.T, name string, rate float64, d time.Duration) *Scenario {
	t.Helper()
	s, err := shipped(t, name).Apply(Overrides{Rate: rate, Duration: d})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRunHoldsTheTargetRate(t *testing.T) {
	if raceEnabled {
		t.Skip("rates are meaningless under the race detector")
	}
	api := newTestAPI(t)
	var mu sync.Mutex
	var arrived []time.Time
	api.before = func(http.ResponseWriter, *http.Request, int64) {
		now := time.Now()
		mu.Lock()
		arrived = append(arrived, now)
		mu.Unlock()
	}
	s := scenarioAt(t, "steady", 1000, 3*time.Second)
	sum, err := Run(context.Background(), Config{RunID: "rate", Scenario: s, Targets: []Target{{"rpc", api.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	v := sum.Variants[0]
	if v.Sent != 3000 || v.Scheduled != 3000 || v.Completed != 3000 || api.arrivals.Load() != 3000 {
		t.Fatalf("1000/s for 3s: want exactly 3000 requests sent, answered and received; sent %d, completed %d, received %d",
			v.Sent, v.Completed, api.arrivals.Load())
	}
	t.Logf("achieved %.2f req/s, p50 %.2f ms, p99 %.2f ms", v.AchievedRate, v.Latency.P50, v.Latency.P99)
	if dev := math.Abs(v.AchievedRate/1000 - 1); dev > 0.02 {
		t.Errorf("achieved %.1f req/s, %.1f%% off the 1000/s target (max 2%%)", v.AchievedRate, dev*100)
	}
	// Second by second, not only on average: a stall followed by a burst
	// that catches up has the right mean rate and the wrong schedule.
	mu.Lock()
	perSecond := perSecondCounts(arrived)
	mu.Unlock()
	// Seconds count from the first arrival, due 1 ms into the schedule: the
	// last ones, due at 3 s, spill into a fourth second when they arrive
	// over 1 ms later than the first did. A few such stragglers are jitter;
	// a stall shows as a second far from 1000.
	if len(perSecond) == 4 && perSecond[3] <= 30 {
		perSecond = perSecond[:3]
	}
	if len(perSecond) != 3 {
		t.Fatalf("arrivals span %d seconds, want 3 (and at most 30 stragglers in a fourth): %v", len(perSecond), perSecond)
	}
	for sec, n := range perSecond {
		if n < 950 || n > 1050 {
			t.Errorf("second %d of the run: %d requests arrived, the schedule sends 1000 (±5%%); all seconds: %v", sec, n, perSecond)
		}
	}
	if v.Outcomes[Acknowledged]+v.Outcomes[Rejected] != 3000 || v.SuccessRate != 1 {
		t.Errorf("a healthy server: want every request answered as expected, got %v, success %.4f", v.Outcomes, v.SuccessRate)
	}
}

// perSecondCounts buckets times by whole seconds since the first.
func perSecondCounts(ts []time.Time) []int {
	if len(ts) == 0 {
		return nil
	}
	first := slices.MinFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	var out []int
	for _, t := range ts {
		sec := int(t.Sub(first) / time.Second)
		for len(out) <= sec {
			out = append(out, 0)
		}
		out[sec]++
	}
	return out
}

// The per-second check sees what the mean cannot: 1000/s for 3s whose
// sends from 0.7s to 1.3s stall and then leave all at once.
func TestPerSecondCountsSeeAStallTheMeanHides(t *testing.T) {
	start := time.Now()
	var ts []time.Time
	for i := range 3000 {
		at := start.Add(time.Duration(i) * time.Millisecond)
		if d := at.Sub(start); d >= 700*time.Millisecond && d < 1300*time.Millisecond {
			at = start.Add(1300 * time.Millisecond) // held back, then a burst
		}
		ts = append(ts, at)
	}
	mean := float64(len(ts)-1) / ts[len(ts)-1].Sub(ts[0]).Seconds()
	if math.Abs(mean/1000-1) > 0.02 {
		t.Fatalf("the mean of the stalled run is %.1f/s; it should look fine", mean)
	}
	if got := perSecondCounts(ts); fmt.Sprint(got) != "[700 1300 1000]" {
		t.Fatalf("per second %v, want [700 1300 1000]", got)
	}
}

func TestEveryVariantGetsTheSameSequenceAtTheSameMoments(t *testing.T) {
	rpc, stream := newTestAPI(t), newTestAPI(t)
	s := scenarioAt(t, "steady", 300, 2*time.Second)
	dir := t.TempDir()
	sum, err := Run(context.Background(), Config{
		RunID: "same", Scenario: s, LedgerPath: filepath.Join(dir, "same.jsonl"),
		Targets: []Target{{"rpc", rpc.URL}, {"stream", stream.URL}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Variants[0].Sent != 600 || sum.Variants[1].Sent != 600 {
		t.Fatalf("want 600 requests to each variant, got %d and %d", sum.Variants[0].Sent, sum.Variants[1].Sent)
	}
	// Ratings: request seq carries the same movie, user and rating to both,
	// exactly what the generator says.
	gen, _ := NewGenerator(s)
	bySeq := func(api *testAPI, variant string) map[uint64]ratingBody {
		out := map[uint64]ratingBody{}
		for id, b := range api.received() {
			if !strings.HasPrefix(id, "same-"+variant+"-") {
				t.Fatalf("variant %s got request id %q, want prefix same-%s-", variant, id, variant)
			}
			b.RequestID = ""
			out[seqOfID(t, id)] = b
		}
		return out
	}
	r, st := bySeq(rpc, "rpc"), bySeq(stream, "stream")
	if len(r) == 0 || len(r) != len(st) {
		t.Fatalf("ratings received: rpc %d, stream %d", len(r), len(st))
	}
	for seq := uint64(0); seq < 600; seq++ {
		want, _ := gen.Request(seq)
		if want.Kind != KindRating {
			if _, ok := r[seq]; ok {
				t.Fatalf("seq %d is a %s request but a rating arrived", seq, want.Kind)
			}
			continue
		}
		wb := ratingBody{MovieID: want.MovieID, UserID: want.UserID, Rating: float64(want.Tenths) / 10}
		if r[seq] != wb || st[seq] != wb {
			t.Fatalf("seq %d: generator %+v, rpc got %+v, stream got %+v", seq, wb, r[seq], st[seq])
		}
	}
	// Reads: the same paths reach both.
	sortedGets := func(a *testAPI) []string {
		a.mu.Lock()
		defer a.mu.Unlock()
		g := append([]string(nil), a.gets...)
		sort.Strings(g)
		return g
	}
	if g1, g2 := sortedGets(rpc), sortedGets(stream); len(g1) == 0 || fmt.Sprint(g1) != fmt.Sprint(g2) {
		t.Errorf("GET requests differ between variants: %d vs %d", len(g1), len(g2))
	}
	// Timing: the same seq leaves for both variants at (nearly) the same moment.
	l, err := ReadLedger(sum.Ledger)
	if err != nil {
		t.Fatal(err)
	}
	sent := map[uint64]map[string]time.Time{}
	for _, e := range l.Entries {
		if sent[e.Seq] == nil {
			sent[e.Seq] = map[string]time.Time{}
		}
		sent[e.Seq][e.Variant] = e.SentAt
	}
	var skews []time.Duration
	for _, m := range sent {
		skews = append(skews, absDur(m["rpc"].Sub(m["stream"])))
	}
	sort.Slice(skews, func(i, j int) bool { return skews[i] < skews[j] })
	t.Logf("send-time skew between variants for the same request: median %s, p99 %s", skews[len(skews)/2], skews[len(skews)*99/100])
	if med := skews[len(skews)/2]; med > 5*time.Millisecond && !raceEnabled {
		t.Errorf("median send-time skew between variants for the same request: %s (want < 5ms)", med)
	}
}

func TestAStallingServerShowsInP99(t *testing.T) {
	api := newTestAPI(t)
	// Request 200 (one second in) starts a 500 ms stall: everything arriving
	// until it ends waits for it. A closed-model generator would stop sending
	// during the stall and report a handful of slow requests; an open model
	// keeps sending, so about 100 requests (1/6 of the run) see the stall.
	const stall = 500 * time.Millisecond
	var stallEnd atomic64Time
	api.before = func(w http.ResponseWriter, r *http.Request, n int64) {
		if n == 200 {
			stallEnd.set(time.Now().Add(stall))
		}
		if end := stallEnd.get(); !end.IsZero() && time.Now().Before(end) {
			select {
			case <-time.After(time.Until(end)):
			case <-r.Context().Done():
			}
		}
	}
	s := scenarioAt(t, "steady", 200, 3*time.Second)
	sum, err := Run(context.Background(), Config{RunID: "stall", Scenario: s, Targets: []Target{{"rpc", api.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	v := sum.Variants[0]
	if v.Sent != 600 {
		t.Errorf("the schedule must go on during the stall: want 600 requests, sent %d", v.Sent)
	}
	t.Logf("p50 %.1f ms, p99 %.1f ms, max %.1f ms, server saw %d in flight", v.Latency.P50, v.Latency.P99, v.Latency.Max, api.maxIn.Load())
	if v.Latency.P99 < 300 || v.Latency.Max < 400 {
		t.Errorf("the stall must show in the tail: p99 %.1f ms, max %.1f ms (want p99 >= 300 ms)", v.Latency.P99, v.Latency.Max)
	}
	if raceEnabled {
		return // the race detector's slowdown blurs how many wait at once and the median (the run without it checks them)
	}
	if in := api.maxIn.Load(); in < 80 {
		t.Errorf("during a 500 ms stall at 200/s about 100 requests should be waiting at once; the server saw at most %d", in)
	}
	if v.Latency.P50 > 100 {
		t.Errorf("most requests were not stalled: p50 %.1f ms", v.Latency.P50)
	}
}

func TestLedgerHasExactlyOneOutcomePerRating(t *testing.T) {
	good := newTestAPI(t)
	// Movie ids pick the misbehaviour, so the expected outcome of every
	// ledger entry follows from its movie.
	good.behave = func(w http.ResponseWriter, r *http.Request, b ratingBody) bool {
		if b.MovieID >= UnknownMovieBase {
			return false
		}
		switch b.MovieID % 8 {
		case 3:
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":"ratings unavailable","retry_after":1}`))
		case 6: // the server cannot tell whether it applied the rating
			w.WriteHeader(http.StatusGatewayTimeout)
			w.Write([]byte(`{"error":"ratings-rpc did not answer","outcome":"unknown"}`))
		case 7: // a valid rating refused: a failure, not an expected 4xx
			w.WriteHeader(http.StatusUnprocessableEntity)
			w.Write([]byte(`{"error":"movie_id: unknown movie"}`))
		case 4: // cut the connection after reading the request
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		case 5: // never answer within the client's timeout
			<-r.Context().Done()
		default:
			return false
		}
		return true
	}
	s := scenarioAt(t, "smoke", 100, 2*time.Second)
	s.Mix = Mix{Rating: 1}
	// Long enough that a loaded machine (make test runs suites side by side
	// under the race detector) answers the well-behaved requests in time.
	s.RequestTimeout = duration.Duration(time.Second)
	reg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(reg, []string{"good", "down"})
	if err != nil {
		t.Fatal(err)
	}
	ledgerPath := filepath.Join(t.TempDir(), "one.jsonl")
	sum, err := Run(context.Background(), Config{
		RunID: "one", Scenario: s, LedgerPath: ledgerPath, Metrics: m,
		Targets: []Target{{"good", good.URL}, {"down", refusedURL(t)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := ReadLedger(ledgerPath)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Complete() || l.End.Interrupted {
		t.Fatalf("a finished run must end its ledger: %+v", l.End)
	}
	if l.Header.RunID != "one" || l.Header.Scenario != "smoke" || fmt.Sprint(l.Header.Variants) != "[good down]" || l.Header.ExpectedPerVariant != 200 {
		t.Errorf("header: %+v", l.Header)
	}
	seen := map[string]map[uint64]int{"good": {}, "down": {}}
	counts := map[string]map[Outcome]int{"good": {}, "down": {}}
	unexpected := map[string]uint64{}
	for _, e := range l.Entries {
		seen[e.Variant][e.Seq]++
		counts[e.Variant][e.Outcome]++
		if e.RequestID != RequestID("one", e.Variant, e.Seq) {
			t.Errorf("entry %+v: request id does not match run, variant and seq", e)
		}
		var want Outcome
		var wantCause Cause
		switch {
		case e.Variant == "down":
			want, wantCause = Failed, CauseNotSent
		case e.UnknownMovie:
			want, wantCause = Rejected, CauseHTTP4xx
		case e.MovieID%8 == 3:
			want, wantCause = Failed, CauseHTTP5xx
		case e.MovieID%8 == 4:
			want, wantCause = Ambiguous, CauseConnError
		case e.MovieID%8 == 5:
			want, wantCause = Ambiguous, CauseTimeout
		case e.MovieID%8 == 6:
			want, wantCause = Ambiguous, CauseOutcomeUnknown
		case e.MovieID%8 == 7:
			want, wantCause = Rejected, CauseHTTP4xx
			unexpected[e.Variant]++
		default:
			want, wantCause = Acknowledged, CauseNone
		}
		if e.Outcome != want || Cause(e.Cause) != wantCause {
			t.Errorf("%s movie %d: outcome %s/%s, want %s/%s (error %q)", e.RequestID, e.MovieID, e.Outcome, e.Cause, want, wantCause, e.Error)
		}
		wantExpected := Acknowledged
		if e.UnknownMovie {
			wantExpected = Rejected
		}
		if e.Expected != wantExpected || e.UnexpectedRejection() != (e.MovieID%8 == 7 && e.Variant == "good" && !e.UnknownMovie) {
			t.Errorf("%s movie %d: expected %s, unexpected rejection %v", e.RequestID, e.MovieID, e.Expected, e.UnexpectedRejection())
		}
	}
	for _, v := range sum.Variants {
		if v.Unexpected4xx != unexpected[v.Variant] || v.Variant == "good" && v.Unexpected4xx == 0 {
			t.Errorf("%s: summary counts %d unexpected 4xx, the ledger %d", v.Variant, v.Unexpected4xx, unexpected[v.Variant])
		}
		if v.Sent != 200 || uint64(len(seen[v.Variant])) != v.Sent {
			t.Errorf("%s: sent %d, ledger has %d distinct requests", v.Variant, v.Sent, len(seen[v.Variant]))
		}
		for seq, n := range seen[v.Variant] {
			if n != 1 || seq >= v.Sent {
				t.Errorf("%s seq %d: %d ledger entries (want exactly 1)", v.Variant, seq, n)
			}
		}
		for _, o := range Outcomes {
			if uint64(counts[v.Variant][o]) != v.Outcomes[o] || l.End.Posts[v.Variant][o] != v.Outcomes[o] {
				t.Errorf("%s %s: ledger %d, end line %d, summary %d", v.Variant, o, counts[v.Variant][o], l.End.Posts[v.Variant][o], v.Outcomes[o])
			}
			var got float64
			for _, expected := range []string{"true", "false"} {
				var pb dto.Metric
				if err := m.requests.WithLabelValues(v.Variant, "rating", string(o), expected).Write(&pb); err == nil {
					got += pb.GetCounter().GetValue()
				}
			}
			if uint64(got) != v.Outcomes[o] {
				t.Errorf("metric lab_load_requests_total{variant=%s,kind=rating,outcome=%s} = %v, summary %d", v.Variant, o, got, v.Outcomes[o])
			}
		}
	}
	for _, o := range []Outcome{Acknowledged, Rejected, Failed, Ambiguous} {
		if counts["good"][o] == 0 {
			t.Errorf("the misbehaving server should have produced some %s outcomes", o)
		}
	}
	// Everything that reached the server is in the ledger under its id.
	byID := map[string]LedgerEntry{}
	for _, e := range l.Entries {
		byID[e.RequestID] = e
	}
	for id := range good.received() {
		if _, ok := byID[id]; !ok {
			t.Errorf("request %s reached the server but is not in the ledger", id)
		}
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("the metrics must gather cleanly (pedantic registry): %v", err)
	}
	observed := map[string]uint64{}
	for _, f := range families {
		if f.GetName() != "lab_load_request_duration_seconds" {
			continue
		}
		for _, mt := range f.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if lp.GetName() == "variant" {
					observed[lp.GetValue()] += mt.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	if observed["good"] != 200 || observed["down"] != 200 {
		t.Errorf("lab_load_request_duration_seconds sample counts: %v, want 200 per variant", observed)
	}
}

func TestAnInterruptedRunStillRecordsEveryRatingSent(t *testing.T) {
	for _, how := range []string{"grace", "abort"} {
		t.Run(how, func(t *testing.T) {
			api := newTestAPI(t)
			received := make(chan struct{})
			api.before = func(w http.ResponseWriter, r *http.Request, n int64) {
				if n == 150 {
					close(received)
				}
			}
			var hanging sync.Map // request ids the server read in full
			api.behave = func(w http.ResponseWriter, r *http.Request, b ratingBody) bool {
				if b.MovieID%5 != 0 {
					return false
				}
				hanging.Store(b.RequestID, true)
				<-r.Context().Done() // hang: only the interruption ends these
				return true
			}
			s := scenarioAt(t, "smoke", 200, 20*time.Second)
			s.Mix = Mix{Rating: 1}
			ctx, cancel := context.WithCancel(context.Background())
			abort := make(chan struct{})
			cfg := Config{
				RunID: "int", Scenario: s, LedgerPath: filepath.Join(t.TempDir(), "int.jsonl"),
				Targets: []Target{{"rpc", api.URL}}, Grace: 200 * time.Millisecond, Abort: abort,
			}
			if how == "abort" {
				cfg.Grace = time.Hour // only the abort can end the hanging requests
			}
			// The interrupting goroutine hands the moment of the interrupt
			// over a channel: read after Run returns, it is ordered by it.
			cancelledAt := make(chan time.Time, 1)
			go func() {
				<-received
				cancelledAt <- time.Now()
				cancel()
				if how == "abort" {
					close(abort)
				}
			}()
			sum, err := Run(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(<-cancelledAt); took > 5*time.Second {
				t.Errorf("the run took %s to end after the interrupt", took)
			}
			v := sum.Variants[0]
			if !sum.Interrupted || v.Sent >= v.Scheduled || v.Sent < 150 {
				t.Fatalf("want an interrupted run with 150 <= sent < %d, got interrupted=%v sent=%d", v.Scheduled, sum.Interrupted, v.Sent)
			}
			l, err := ReadLedger(sum.Ledger)
			if err != nil {
				t.Fatal(err)
			}
			if !l.Complete() || !l.End.Interrupted {
				t.Fatalf("an interrupted run must still end its ledger, marked interrupted: %+v", l.End)
			}
			seqs := map[uint64]bool{}
			aborted := 0
			for _, e := range l.Entries {
				if seqs[e.Seq] {
					t.Errorf("seq %d recorded twice", e.Seq)
				}
				seqs[e.Seq] = true
				if e.MovieID%5 == 0 && e.MovieID < UnknownMovieBase {
					// One the server read in full is ambiguous; one the
					// interrupt caught before it was completely written (a
					// loaded machine) was never sent, and saying so is right.
					_, read := hanging.Load(e.RequestID)
					ambiguous := e.Outcome == Ambiguous && Cause(e.Cause) == CauseAborted
					notSent := e.Outcome == Failed && Cause(e.Cause) == CauseNotSent
					if !ambiguous && (read || !notSent) {
						t.Errorf("request %s (read by the server: %v) hanging at the interrupt must be ambiguous/aborted, got %s/%s", e.RequestID, read, e.Outcome, e.Cause)
					}
					if read {
						aborted++
					}
				}
			}
			if uint64(len(l.Entries)) != v.Sent {
				t.Errorf("sent %d ratings, ledger has %d entries", v.Sent, len(l.Entries))
			}
			for seq := uint64(0); seq < v.Sent; seq++ {
				if !seqs[seq] {
					t.Errorf("seq %d was sent but has no ledger entry", seq)
				}
			}
			if aborted == 0 {
				t.Error("expected some requests the server read to hang at the interrupt")
			}
			for id := range api.received() {
				if seq := seqOfID(t, id); !seqs[seq] {
					t.Errorf("request %s reached the server but is not in the ledger", id)
				}
			}
		})
	}
}

func TestUnreachableTargetIsFoundBeforeAnyRequest(t *testing.T) {
	api := newTestAPI(t)
	down := refusedURL(t)
	err := CheckReachable(context.Background(), []Target{{"rpc", api.URL}, {"stream", down}}, 2*time.Second)
	if err == nil || !strings.Contains(err.Error(), "stream") || strings.Contains(err.Error(), "variant rpc") {
		t.Errorf("want an error naming only the stream variant, got %v", err)
	}
	if err := CheckReachable(context.Background(), []Target{{"rpc", api.URL}}, 2*time.Second); err != nil {
		t.Errorf("a live target: %v", err)
	}
	if api.arrivals.Load() != 0 {
		t.Error("the reachability check must not send API requests")
	}
	for _, bad := range [][]Target{nil, {{"rpc", "127.0.0.1:7710"}}, {{"rpc", api.URL}, {"rpc", api.URL}}, {{"", api.URL}}} {
		if err := CheckReachable(context.Background(), bad, time.Second); err == nil {
			t.Errorf("targets %v: want an error", bad)
		}
	}
}
