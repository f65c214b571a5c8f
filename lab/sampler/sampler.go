// Package sampler reads every part's /metrics (and the public view of each
// variant) once a second during a run, and derives from successive scrapes
// the named per-variant series of the journal (package journal lists them):
// rates from counter deltas, quantiles from histogram bucket deltas. The
// journal then holds everything a report needs, without a Prometheus.
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
}

// ViewTotal sums the public view of one variant.
type ViewTotal struct {
	Count     int64
	SumTenths int64
	Err       string
}

// Sampler scrapes its targets every Every.
type Sampler struct {
	Targets []Target
	Views   []View
	Every   time.Duration // default 1s
	Client  *http.Client  // default: a client with no keep-alive surprises
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

// ScrapeOnce reads every target and view concurrently. Each read is bounded
// by 80 % of Every so a stopped (SIGSTOP) part cannot stall the sampler; it
// shows up as a scrape error instead.
func (s *Sampler) ScrapeOnce(ctx context.Context) Scrape {
	ctx, cancel := context.WithTimeout(ctx, s.every()*8/10)
	defer cancel()
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	sc := Scrape{At: time.Now(), Families: map[string]Families{}, Errors: map[string]string{}, Views: map[string]ViewTotal{}}
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
	wg.Wait()
	return sc
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
	var total ViewTotal
	err := audit.EachMovie(ctx, client, baseURL, func(m audit.MovieState) {
		total.Count += m.Count
		total.SumTenths += m.SumTenths
	})
	return total, err
}
