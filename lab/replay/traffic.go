package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ratingslab/lab/lab/load/ledger"
	"github.com/ratingslab/lab/services/lib/kafkaio"
	"github.com/ratingslab/lab/services/model"
)

// Speed is how fast traffic is replayed: a factor of the original pace, or
// as fast as possible.
type Speed struct {
	Factor float64 // 1 = original pace; 0 with Max
	Max    bool
}

// ParseSpeed reads --speed: "1x", "10x", "0.5x" or "max".
func ParseSpeed(s string) (Speed, error) {
	if s == "max" {
		return Speed{Max: true}, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "x"), 64)
	if err != nil || !strings.HasSuffix(s, "x") || f <= 0 || f > 10000 {
		return Speed{}, fmt.Errorf("--speed %q: want a factor of the original pace such as 1x, 10x or 0.5x (up to 10000x), or max", s)
	}
	return Speed{Factor: f}, nil
}

func (s Speed) String() string {
	if s.Max {
		return "max"
	}
	return strconv.FormatFloat(s.Factor, 'f', -1, 64) + "x"
}

// TrafficSpec is one traffic replay.
type TrafficSpec struct {
	// Codec decodes the recorded ratings (the lab's --format; nil: JSON).
	Codec *model.Codec
	// From and To select the ratings by record timestamp, [From, To).
	From, To time.Time
	// Variant names the target in the ledger ("rpc", "stream"); URL is the
	// base URL of its public API.
	Variant string
	URL     string
	Speed   Speed
	// RunID names the run: the ledger and every request id derive from it.
	RunID string
	// LedgerDir is where the ledger is written (<dir>/ledgers).
	LedgerDir string
	// Timeout bounds one request (default 5s).
	Timeout time.Duration
	// Concurrency bounds the requests in flight (default 256 paced, 32 at
	// max speed). A paced replay that hits it falls behind schedule, which
	// the result reports.
	Concurrency int
	// Progress, when set, is called about once a second.
	Progress func(TrafficProgress)
}

// TrafficProgress is a progress sample.
type TrafficProgress struct {
	Sent, Total, Acknowledged, Failed int64
	InFlight                          int64
	Elapsed                           time.Duration
}

// TrafficResult is what a replay sent and how it ended.
type TrafficResult struct {
	RunID   string    `json:"run_id"`
	Ledger  string    `json:"ledger"`
	Variant string    `json:"variant"`
	URL     string    `json:"url"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Speed   string    `json:"speed"`
	// Ratings: valid rating events in the window, each request id once.
	Ratings int `json:"ratings"`
	// Skipped: records of the window not replayed, by reason.
	Skipped     map[string]int           `json:"skipped"`
	Outcomes    map[ledger.Outcome]int64 `json:"outcomes"`
	Causes      map[string]int64         `json:"causes,omitempty"`
	Original    time.Duration            `json:"original_ns"` // span of the event times replayed
	Duration    time.Duration            `json:"duration_ns"`
	MaxLate     time.Duration            `json:"max_late_ns"` // worst lateness against the schedule
	Interrupted bool                     `json:"interrupted"`
}

// replayed is one rating to send.
type replayed struct {
	ev        model.RatingEvent
	partition int
	offset    int64
}

// Reasons a record of the window is not replayed.
const (
	SkipNotRating = "not-a-countable-rating" // ratings-stream dead-letters it: no POST would say the same
	SkipDuplicate = "duplicate-request-id"   // re-produced: ratings-stream counted it once
)

// selectRatings reads the window's ratings: valid events on the partition
// their key maps to, each request id once (the first), in event-time order.
func selectRatings(ctx context.Context, k *kafkaio.Cluster, codec *model.Codec, from, to time.Time) ([]replayed, map[string]int, error) {
	rs, err := ranges(ctx, k, model.TopicRatings, -1, from, to)
	if err != nil {
		return nil, nil, err
	}
	partitions, err := partitionCount(ctx, k, model.TopicRatings)
	if err != nil {
		return nil, nil, err
	}
	var out []replayed
	skipped := map[string]int{}
	seen := map[string]bool{}
	for _, r := range rs {
		err := scanRange(ctx, k, model.TopicRatings, r.Partition, r.From, r.To, func(rec Record) error {
			ev, err := codec.DecodeRating(ctx, rec.Value)
			if err != nil || model.CheckRatingKey(rec.Key, ev) != nil || model.RatingPartition(rec.Key, partitions) != rec.Partition {
				skipped[SkipNotRating]++
				return nil
			}
			if seen[ev.RequestID] {
				skipped[SkipDuplicate]++
				return nil
			}
			seen[ev.RequestID] = true
			out = append(out, replayed{ev: ev, partition: rec.Partition, offset: rec.Offset})
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.ev.EventTime.Equal(b.ev.EventTime) {
			return a.ev.EventTime.Before(b.ev.EventTime)
		}
		if a.partition != b.partition {
			return a.partition < b.partition
		}
		return a.offset < b.offset
	})
	return out, skipped, nil
}

// ReplayRequestID is the request id of the replay of the record at
// partition/offset of `ratings` in run runID: new (the target must apply it
// as a new rating), unique per run, and traceable to the record it replays.
func ReplayRequestID(runID string, partition int, offset int64) string {
	return runID + ":" + strconv.Itoa(partition) + "." + strconv.FormatInt(offset, 10)
}

// ReplayTraffic re-drives a webserver with the ratings recorded in a window
// of `ratings`: one POST /api/ratings per rating, with a new request id, at
// the original pace (from the events' event_time) times Speed, or as fast
// as possible. Every request and its outcome goes into a ledger in the
// format of `lab load`, so `lab audit --ledger` checks the target after.
func ReplayTraffic(ctx context.Context, k *kafkaio.Cluster, spec TrafficSpec) (*TrafficResult, error) {
	if err := spec.check(); err != nil {
		return nil, err
	}
	sel, skipped, err := selectRatings(ctx, k, spec.Codec, spec.From, spec.To)
	if err != nil {
		return nil, err
	}
	res := &TrafficResult{RunID: spec.RunID, Variant: spec.Variant, URL: strings.TrimSuffix(spec.URL, "/"), From: spec.From, To: spec.To,
		Speed: spec.Speed.String(), Ratings: len(sel), Skipped: skipped, Outcomes: map[ledger.Outcome]int64{}, Causes: map[string]int64{}}
	if len(sel) == 0 {
		return res, fmt.Errorf("no ratings in %s between %s and %s", model.TopicRatings, spec.From.Format(time.RFC3339Nano), spec.To.Format(time.RFC3339Nano))
	}
	res.Original = sel[len(sel)-1].ev.EventTime.Sub(sel[0].ev.EventTime)
	lw, err := createTrafficLedger(spec, res)
	if err != nil {
		return nil, err
	}

	client := &http.Client{
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: spec.Concurrency,
			IdleConnTimeout:     90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()

	t := &trafficRun{spec: spec, res: res, lw: lw, client: client, sel: sel, start: time.Now()}
	stopProgress := t.reportProgress()
	t.dispatch(ctx)
	stopProgress()
	res.Duration = time.Since(t.start)
	res.Interrupted = ctx.Err() != nil
	if err := lw.Close(time.Now(), res.Interrupted); err != nil {
		return res, err
	}
	if spec.Progress != nil {
		spec.Progress(t.progress(res.Duration))
	}
	if res.Interrupted {
		return res, fmt.Errorf("interrupted after %d of %d ratings (the ledger has every one sent)", t.sent.Load(), len(sel))
	}
	return res, nil
}

// check rejects an unusable spec and fills in its defaults.
func (spec *TrafficSpec) check() error {
	if spec.Variant == "" || spec.URL == "" {
		return errors.New("--target: a target is required (rpc or stream)")
	}
	if !spec.Speed.Max && spec.Speed.Factor <= 0 {
		return errors.New("--speed: want 1x, 10x, ... or max")
	}
	if spec.From.IsZero() || spec.To.IsZero() {
		return errors.New("--from and --to: both ends of the window are required (RFC 3339 times)")
	}
	if !spec.To.After(spec.From) {
		return fmt.Errorf("--to %s: must be after --from %s", spec.To.Format(time.RFC3339Nano), spec.From.Format(time.RFC3339Nano))
	}
	if spec.RunID == "" || strings.ContainsAny(spec.RunID, "/\\ \t\n") {
		return fmt.Errorf("run id %q: must be a word usable as a file name", spec.RunID)
	}
	if spec.Timeout <= 0 {
		spec.Timeout = 5 * time.Second
	}
	if spec.Concurrency <= 0 {
		spec.Concurrency = 256
		if spec.Speed.Max {
			spec.Concurrency = 32
		}
	}
	return nil
}

// createTrafficLedger creates the replay's ledger (res.Ledger), its header
// saying where the ratings came from and at what pace they are sent.
func createTrafficLedger(spec TrafficSpec, res *TrafficResult) (*ledger.Writer, error) {
	schedule := "as fast as possible (" + strconv.Itoa(spec.Concurrency) + " in flight)"
	if !spec.Speed.Max {
		schedule = fmt.Sprintf("original pace × %s over %s of recorded traffic", spec.Speed, res.Original.Round(time.Millisecond))
	}
	res.Ledger = filepath.Join(spec.LedgerDir, spec.RunID+".jsonl")
	return ledger.Create(res.Ledger, ledger.Header{
		RunID: spec.RunID, Scenario: "replay", Variants: []string{spec.Variant},
		Targets:            map[string]string{spec.Variant: res.URL},
		Source:             fmt.Sprintf("log:%s[%s,%s)", model.TopicRatings, spec.From.UTC().Format(time.RFC3339Nano), spec.To.UTC().Format(time.RFC3339Nano)),
		StartedAt:          time.Now(),
		Schedule:           schedule,
		ExpectedPerVariant: uint64(res.Ratings),
	})
}

// trafficRun is one replay between its start and its result.
type trafficRun struct {
	spec   TrafficSpec
	res    *TrafficResult
	lw     *ledger.Writer
	client *http.Client
	sel    []replayed
	start  time.Time

	mu                            sync.Mutex // guards res's tallies and lw
	inFlight, sent, acked, failed atomic.Int64
}

// record tallies one outcome and writes it to the ledger.
func (t *trafficRun) record(e ledger.Entry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.res.Outcomes[e.Outcome]++
	if e.Cause != "" {
		t.res.Causes[e.Cause]++
	}
	_ = t.lw.Record(e) // the first write error sticks and is reported at the end
}

func (t *trafficRun) progress(elapsed time.Duration) TrafficProgress {
	return TrafficProgress{Sent: t.sent.Load(), Total: int64(len(t.sel)), Acknowledged: t.acked.Load(), Failed: t.failed.Load(), InFlight: t.inFlight.Load(), Elapsed: elapsed}
}

// reportProgress flushes the ledger and reports progress every second
// until stop is called.
func (t *trafficRun) reportProgress() (stop func()) {
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-tick.C:
				_ = t.lw.Flush()
				if t.spec.Progress != nil {
					t.spec.Progress(t.progress(time.Since(t.start)))
				}
			}
		}
	}()
	return func() {
		close(stopProgress)
		<-progressDone
	}
}

// dispatch sends every selected rating, at the original pace scaled by
// the speed (or as fast as Concurrency allows), until done or ctx ends,
// and waits for the answers.
func (t *trafficRun) dispatch(ctx context.Context) {
	spec, res := t.spec, t.res
	var wg sync.WaitGroup
	sem := make(chan struct{}, spec.Concurrency)
	first := t.sel[0].ev.EventTime
dispatch:
	for i, r := range t.sel {
		if !spec.Speed.Max {
			due := t.start.Add(time.Duration(float64(r.ev.EventTime.Sub(first)) / spec.Speed.Factor))
			if wait := time.Until(due); wait > 0 {
				select {
				case <-ctx.Done():
					break dispatch
				case <-time.After(wait):
				}
			}
		}
		select {
		case <-ctx.Done():
			break dispatch
		case sem <- struct{}{}:
		}
		if !spec.Speed.Max {
			due := t.start.Add(time.Duration(float64(r.ev.EventTime.Sub(first)) / spec.Speed.Factor))
			if late := time.Since(due); late > res.MaxLate {
				res.MaxLate = late
			}
		}
		t.sent.Add(1)
		t.inFlight.Add(1)
		wg.Go(func() {
			defer func() { <-sem; t.inFlight.Add(-1) }()
			e := post(ctx, t.client, res.URL, spec.Timeout, ReplayRequestID(spec.RunID, r.partition, r.offset), r.ev)
			e.Variant, e.Seq = spec.Variant, uint64(i)
			switch e.Outcome {
			case ledger.Acknowledged:
				t.acked.Add(1)
			case ledger.Failed, ledger.Ambiguous:
				t.failed.Add(1)
			}
			t.record(e)
		})
	}
	wg.Wait()
}

// post sends one rating and classifies the answer as `lab load` does
// (ledger.Classify, the one definition in docs/api.md).
func post(ctx context.Context, client *http.Client, base string, timeout time.Duration, requestID string, ev model.RatingEvent) ledger.Entry {
	e := ledger.Entry{RequestID: requestID, MovieID: ev.MovieID, UserID: ev.UserID,
		Rating: float64(ev.Tenths) / 10, RatingTenths: ev.Tenths, Expected: ledger.Acknowledged, SentAt: time.Now()}
	body := []byte(`{"request_id":` + strconv.Quote(requestID) + `,"movie_id":` + strconv.FormatInt(ev.MovieID, 10))
	if ev.UserID > 0 {
		body = append(body, `,"user_id":`+strconv.FormatInt(ev.UserID, 10)...)
	}
	body = append(append(body, `,"rating":`...), model.AppendTenths(nil, ev.Tenths)...)
	body = append(body, '}')

	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var written atomic.Bool
	rctx = httptrace.WithClientTrace(rctx, &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
		if i.Err == nil {
			written.Store(true)
		}
	}})
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, base+"/api/ratings", strings.NewReader(string(body)))
	if err != nil {
		e.Outcome, e.Cause, e.Error = ledger.Failed, ledger.CauseNotSent, err.Error()
		return e
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	status := 0
	if err == nil {
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		e.Status = resp.StatusCode
		if err == nil {
			status = resp.StatusCode
		}
	}
	e.LatencyNs = time.Since(e.SentAt)
	e.Outcome, e.Cause = ledger.Classify(ledger.Answer{Status: status, Written: written.Load(),
		Aborted: ctx.Err() != nil, TimedOut: errors.Is(rctx.Err(), context.DeadlineExceeded)})
	if err != nil && e.Outcome != ledger.Acknowledged {
		e.Error = err.Error()
	}
	if e.Outcome != ledger.Acknowledged && e.Error == "" {
		e.Error = "status " + strconv.Itoa(e.Status)
	}
	return e
}
