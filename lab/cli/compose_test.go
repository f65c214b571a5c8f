package cli

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// lab compose watch names the faults on a real Toxiproxy as the lab's fault
// catalog does: the toxic's type, and "partition" for a zero timeout (how
// the lab partitions an edge) or a proxy disabled by hand; a proxy the
// watcher closed because nothing listens behind it is no fault.
func TestComposeWatchNamesToxiproxysFaultsAsTheCatalogDoes(t *testing.T) {
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	api := httptest.NewServer(server.Routes())
	defer api.Close()
	c := toxiclient.NewClient(api.URL)
	for _, name := range []string{"a->b", "b->c", "c->d"} {
		p, err := c.CreateProxy(name, "127.0.0.1:0", "127.0.0.1:9")
		if err != nil {
			t.Fatal(err)
		}
		defer p.Delete()
	}

	byHand := func(string) bool { return false }
	got, err := toxiproxyFaults(api.URL, byHand)
	if err != nil || len(got) != 0 {
		t.Fatalf("no toxics: faults %v (%v), want none", got, err)
	}

	ab, _ := c.Proxy("a->b")
	if _, err := ab.AddToxic("slow", "latency", "downstream", 1, toxiclient.Attributes{"latency": 100}); err != nil {
		t.Fatal(err)
	}
	bc, _ := c.Proxy("b->c")
	if _, err := bc.AddToxic("cut", "timeout", "downstream", 1, toxiclient.Attributes{"timeout": 0}); err != nil {
		t.Fatal(err)
	}
	cd, _ := c.Proxy("c->d")
	cd.Enabled = false
	if err := cd.Save(); err != nil {
		t.Fatal(err)
	}

	got, err = toxiproxyFaults(api.URL, byHand)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(a, b [2]string) int { return strings.Compare(a[1]+" "+a[0], b[1]+" "+b[0]) })
	want := [][2]string{{"latency", "a->b"}, {"partition", "b->c"}, {"partition", "c->d"}}
	if !slices.Equal(got, want) {
		t.Errorf("faults %v, want %v", got, want)
	}

	closedByTheWatcher := func(name string) bool { return name == "c->d" }
	got, err = toxiproxyFaults(api.URL, closedByTheWatcher)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(a, b [2]string) int { return strings.Compare(a[1]+" "+a[0], b[1]+" "+b[0]) })
	if want := want[:2]; !slices.Equal(got, want) {
		t.Errorf("c->d closed by the watcher: faults %v, want %v", got, want)
	}

	if _, err := toxiproxyFaults("http://127.0.0.1:1", byHand); err == nil {
		t.Error("an unreachable Toxiproxy gave no error: its faults would read as none")
	}
}
