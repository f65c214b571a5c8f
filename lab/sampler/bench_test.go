package sampler

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/latency"
	"github.com/ratingslab/lab/lab/load"
)

// BenchmarkExactPercentiles is what the exact percentiles cost per request
// at 5000 requests/s: the ClientMeter's Sent and Answered (a latency
// recorded into the current second's histogram), its Cut once a second
// (5000 answers), and once a second a 5 s window merged and its p99 taken,
// as the progress line and the continuous probes do. ns/op is the CPU per
// request (one goroutine).
func BenchmarkExactPercentiles(b *testing.B) {
	const perSecond = 5000
	m := NewClientMeter([]string{"rpc"})
	var seconds []latency.Counts
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.Sent("rpc", uint64(i))
		m.Answered(load.Answer{Variant: "rpc", Kind: load.KindRating, MovieID: int64(i % 100), Outcome: load.Acknowledged,
			Expected: load.Acknowledged, Latency: time.Duration(2_000_000 + i%7919*1000)})
		if i%perSecond == perSecond-1 {
			t := m.Cut(time.Now())
			seconds = append(seconds, t["rpc"].All().Latency)
			window := latency.MergeAll(seconds[max(0, len(seconds)-5):]...)
			_ = window.Quantile(0.99)
		}
	}
}

// BenchmarkEngineAt5k runs the load engine at 5000 requests/s against a
// trivial in-process handler, without and with the ClientMeter observing
// every request: the difference in process CPU per request is the whole
// cost of exact percentiles in a run (cpu-ns/req; the handler's share is
// the same in both).
func BenchmarkEngineAt5k(b *testing.B) {
	for _, observe := range []bool{false, true} {
		name := map[bool]string{false: "observer=off", true: "observer=on"}[observe]
		b.Run(name, func(b *testing.B) {
			const rate = 5000
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusCreated)
				w.Write([]byte(`{"request_id":""}`))
			}))
			defer srv.Close()
			s, err := load.ParseScenario([]byte(`{"name":"bench","arrival":{"executor":"constant-arrival-rate","rate":5000,"duration":"1s"},"mix":{"rating":1}}`), "json")
			if err != nil {
				b.Fatal(err)
			}
			s, err = s.Apply(load.Overrides{Duration: max(time.Duration(b.N)*time.Second/rate, time.Second)})
			if err != nil {
				b.Fatal(err)
			}
			cfg := load.Config{RunID: "bench", Scenario: s, Targets: []load.Target{{Variant: "rpc", BaseURL: srv.URL}},
				LedgerPath: filepath.Join(b.TempDir(), "bench.jsonl")}
			if observe {
				cfg.Observer = NewClientMeter([]string{"rpc"})
			}
			cpu0 := processCPU()
			b.ResetTimer()
			sum, err := load.Run(context.Background(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			v := sum.Variants[0]
			b.ReportMetric(float64(processCPU()-cpu0)/float64(v.Sent), "cpu-ns/req")
			b.ReportMetric(v.AchievedRate, "achieved-req/s")
		})
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
