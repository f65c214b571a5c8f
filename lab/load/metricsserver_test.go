package load

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestServeMetricsServesMetricsAndHealth(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg, []string{"rpc"}); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	stop, err := ServeMetrics(addr, reg)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for _, c := range []struct{ path, want string }{
		{"/metrics", "lab_load_requests_total"},
		{"/metrics", "process_cpu_seconds_total"}, // the generator's own CPU, for the machine panel
		{"/healthz", `{"status":"ok"}`},
	} {
		path, want := c.path, c.want
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d, body lacks %q", path, resp.StatusCode, want)
		}
	}
}

func TestServeMetricsOnABusyPortIsAnError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	stop, err := ServeMetrics(l.Addr().String(), prometheus.NewRegistry())
	if err == nil {
		stop()
		t.Fatal("ServeMetrics on a port already in use: no error")
	}
	if !strings.Contains(err.Error(), l.Addr().String()) || !strings.Contains(err.Error(), "another `lab load`") {
		t.Errorf("error %q does not name the port and the likely cause", err)
	}
}
