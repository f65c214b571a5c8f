package faults

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// BenchmarkEdgeProxyAddedLatency measures what an edge proxy with no toxic
// adds to one request/response over a kept-alive connection (the way parts
// talk to each other and to the broker). Requests alternate between the
// upstream directly and through the proxy, so both see the same machine
// load; the reported metric is the difference of the medians.
// Target: added-p50 < 100µs.
//
//	go test ./lab/faults -run '^$' -bench EdgeProxyAddedLatency -benchtime 5000x
func BenchmarkEdgeProxyAddedLatency(b *testing.B) {
	quietToxics()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"movie_id":1,"title":"Heat"}`))
	}))
	defer up.Close()
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(server, "bench", "127.0.0.1:0", up.Listener.Addr().String())
	if err := server.Collection.Add(p, true); err != nil {
		b.Fatal(err)
	}
	defer server.Collection.Clear()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 5 * time.Second}
	get := func(url string) time.Duration {
		start := time.Now()
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(start)
	}
	direct, proxied := up.URL+"/movies/1", "http://"+p.Listen+"/movies/1"
	for range 50 { // warm both connections
		get(direct)
		get(proxied)
	}
	viaDirect := make([]time.Duration, 0, b.N)
	viaProxy := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		viaDirect = append(viaDirect, get(direct))
		viaProxy = append(viaProxy, get(proxied))
	}
	b.StopTimer()
	p50 := func(ds []time.Duration) time.Duration {
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	pd, pp := p50(viaDirect), p50(viaProxy)
	b.ReportMetric(float64(pd.Microseconds()), "direct-p50-µs")
	b.ReportMetric(float64(pp.Microseconds()), "proxied-p50-µs")
	b.ReportMetric(float64((pp - pd).Microseconds()), "added-p50-µs")
}
