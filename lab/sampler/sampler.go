// Package sampler reads, once a second during a run, every part's /metrics,
// the public view of each variant and — from outside the processes — each
// log variant's consumer lag and dead letters (package lag), and derives the
// named per-variant series of the journal (package journal lists them). The
// client series come from the load generator's own per-request feed
// (ClientMeter), never from histogram buckets; server rates come from
// counter deltas. The journal then holds everything a report needs, without
// a Prometheus.
package sampler

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ratingslab/lab/lab/audit"
	"github.com/ratingslab/lab/lab/lag"
	"github.com/ratingslab/lab/lab/machinecpu"
	"github.com/ratingslab/lab/services/lib/kafkaio"
)

// Target is one source of metrics.
type Target struct {
	// Part names the process: "webserver-rpc", "ratings-stream-2",
	// "supervisor", "load", ...
	Part string
	// Variant the part belongs to ("rpc", "stream"; "lab" for shared
	// parts). The load generator's series carry their own variant label,
	// so its Variant does not matter.
	Variant string
	// URL of the /metrics endpoint; or Gatherer for a registry in this
	// process (an in-process load engine). One of the two.
	URL      string
	Gatherer prometheus.Gatherer
}

// View is a variant's public API, read each tick for the view series.
type View struct {
	Variant string
	BaseURL string // e.g. http://127.0.0.1:7710
}

// Log is a log variant's log, read from outside its processes: the
// consumer's lag (broker end offsets − its durable position) and the
// records in the dead-letter topic, both from a direct broker connection.
type Log struct {
	Variant string
	Lag     *lag.Meter
	// DLQ, when set, is the dead-letter topic read through Broker.
	Broker        lag.EndOffsets
	DLQ           string
	DLQPartitions int
}

// DLQRead is the dead-letter topic's end offsets summed, or why not.
type DLQRead struct {
	End int64
	Err string
}

// Families are one target's metric families by name.
type Families map[string]*dto.MetricFamily

// Scrape is one tick: what each target and view answered.
type Scrape struct {
	At time.Time
	// Families by part; a part that could not be read is absent here and
	// present in Errors.
	Families map[string]Families
	Errors   map[string]string
	// Views by variant.
	Views map[string]ViewTotal
	// Lags and DLQ by variant (log variants only).
	Lags map[string]lag.Lag
	DLQ  map[string]DLQRead
	// AckedBefore are the acknowledged ratings per variant and movie just
	// before the views were read (Sampler.Acked): every one of them should
	// be visible in the view read after it.
	AckedBefore map[string]map[int64]uint64
	// Machine is the machine's CPU times at At (nil where unreadable).
	Machine *machinecpu.Times
}

// ViewTotal is the public view of one variant: every movie's count, and
// the sums.
type ViewTotal struct {
	Movies    map[int64]int64
	Count     int64
	SumTenths int64
	Err       string
}

// Sampler scrapes its targets every Every.
type Sampler struct {
	Targets []Target
	Views   []View
	Logs    []Log
	// Acked, when set, reports the acknowledged ratings per variant and
	// movie (ClientMeter.Acked); it is read before the views.
	Acked  func() map[string]map[int64]uint64
	Every  time.Duration // default 1s
	Client *http.Client  // default: a client with no keep-alive surprises
}

func (s *Sampler) every() time.Duration {
	if s.Every <= 0 {
		return time.Second
	}
	return s.Every
}

// Run scrapes once per Every until ctx ends, calling fn with each scrape
// (from the sampler's goroutine, one at a time). It returns ctx's error.
func (s *Sampler) Run(ctx context.Context, fn func(Scrape)) error {
	t := time.NewTicker(s.every())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			sc := s.ScrapeOnce(ctx)
			if ctx.Err() != nil {
				// Stopped mid-scrape: what it read was cut short by the
				// stop, not by the lab; recording it would end the run
				// with a sample of errors.
				return ctx.Err()
			}
			fn(sc)
		}
	}
}

// ScrapeOnce reads every target, view and log concurrently. Each read is
// bounded by 80 % of Every so a stopped (SIGSTOP) part cannot stall the
// sampler; it shows up as a scrape error (or an unknown lag) instead.
func (s *Sampler) ScrapeOnce(ctx context.Context) Scrape {
	ctx, cancel := context.WithTimeout(ctx, s.every()*8/10)
	defer cancel()
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	sc := Scrape{At: time.Now(), Families: map[string]Families{}, Errors: map[string]string{}, Views: map[string]ViewTotal{},
		Lags: map[string]lag.Lag{}, DLQ: map[string]DLQRead{}}
	if s.Acked != nil {
		sc.AckedBefore = s.Acked()
	}
	if t, err := machinecpu.Read(); err == nil {
		sc.Machine = &t
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, t := range s.Targets {
		wg.Go(func() {
			fams, err := scrapeTarget(ctx, client, t)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				sc.Errors[t.Part] = err.Error()
				return
			}
			sc.Families[t.Part] = fams
		})
	}
	for _, v := range s.Views {
		wg.Go(func() {
			total, err := ReadView(ctx, client, v.BaseURL)
			if err != nil {
				total.Err = err.Error()
			}
			mu.Lock()
			sc.Views[v.Variant] = total
			mu.Unlock()
		})
	}
	for _, l := range s.Logs {
		if l.Lag != nil {
			wg.Go(func() {
				m := l.Lag.Measure(ctx)
				mu.Lock()
				sc.Lags[l.Variant] = m
				mu.Unlock()
			})
		}
		if l.DLQ != "" && l.Broker != nil {
			wg.Go(func() {
				r := readDLQ(ctx, l)
				mu.Lock()
				sc.DLQ[l.Variant] = r
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	return sc
}

func readDLQ(ctx context.Context, l Log) DLQRead {
	bounds, err := l.Broker.Offsets(ctx, l.DLQ, kafkaio.AllPartitions(max(l.DLQPartitions, 1)))
	if err != nil {
		return DLQRead{Err: err.Error()}
	}
	var r DLQRead
	for _, b := range bounds {
		r.End += b.End
	}
	return r
}

func scrapeTarget(ctx context.Context, client *http.Client, t Target) (Families, error) {
	if t.Gatherer != nil {
		list, err := t.Gatherer.Gather()
		if err != nil {
			return nil, fmt.Errorf("%s: gather: %w", t.Part, err)
		}
		fams := Families{}
		for _, f := range list {
			fams[f.GetName()] = f
		}
		return fams, nil
	}
	return ScrapeURL(ctx, client, t.URL)
}

// ScrapeURL reads one /metrics endpoint in the Prometheus text format.
func ScrapeURL(ctx context.Context, client *http.Client, url string) (Families, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	// Ask for the classic text format: it is what every part serves and
	// what expfmt's text parser reads.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("%s: status %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	return fams, nil
}

// ReadView sums count and sum over every movie of a variant's public API
// (GET /api/movies, paged). The catalog is small (a few hundred movies), so
// a page a second costs nothing next to the load.
func ReadView(ctx context.Context, client *http.Client, baseURL string) (ViewTotal, error) {
	total := ViewTotal{Movies: map[int64]int64{}}
	err := audit.EachMovie(ctx, client, baseURL, func(m audit.MovieState) {
		total.Movies[m.MovieID] = m.Count
		total.Count += m.Count
		total.SumTenths += m.SumTenths
	})
	return total, err
}
