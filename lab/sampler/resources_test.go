package sampler

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/services/lib/breaker"
	labserve "github.com/ratingslab/lab/services/lib/serve"
)

// The deriver reads the bounded resources from the metrics the services
// really expose (serve's bulkhead, breaker's pool and calls): the series
// of the report's pool, calls-per-edge and bulkhead charts.
func TestDeriverReadsTheBoundedResources(t *testing.T) {
	reg := prometheus.NewRegistry()
	labserve.New(labserve.Options{Registry: reg})
	s := breaker.DefaultSettings()
	s.Enabled = false
	s.Timeout = 200 * time.Millisecond
	u := breaker.Upstream{Name: "movies-rpc", URLFlag: "movies-url", URL: "http://127.0.0.1:1", Settings: s, Pool: breaker.ClientOptions{MaxConnsPerHost: 4, MaxPending: 8}}
	api, _, err := u.Connect(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	scrape := func(at time.Time) Scrape {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		f := Families{}
		for _, mf := range mfs {
			f[mf.GetName()] = mf
		}
		return Scrape{At: at, Families: map[string]Families{"ratings-rpc": f}}
	}
	d := NewDeriver([]string{"rpc"}, []Target{{Part: "ratings-rpc", Variant: "rpc"}})
	at := time.Unix(1000, 0)
	d.Next(scrape(at), nil)
	for range 6 { // port 1 refuses: six failed attempts
		_ = api.Call(context.Background(), "GET", "/movies/1", nil, nil)
	}
	smp := d.Next(scrape(at.Add(2*time.Second)), nil)[0]
	for series, want := range map[string]float64{
		journal.EdgeSeries(journal.SeriesEdgeCallsRPS, "ratings-rpc", "movies-rpc"):    3, // 6 attempts in 2 s
		journal.EdgeSeries(journal.SeriesPoolUtilisation, "ratings-rpc", "movies-rpc"): 0,
		journal.EdgeSeries(journal.SeriesPoolWaiting, "ratings-rpc", "movies-rpc"):     0,
		journal.PartSeries(journal.SeriesPartInFlight, "ratings-rpc"):                  0,
		journal.PartSeries(journal.SeriesPartQueued, "ratings-rpc"):                    0,
		journal.BreakerSeries("ratings-rpc", "movies-rpc reads"):                       journal.BreakerDisabled,
	} {
		if v, ok := smp.Get(series); !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}
}
