package bench

import (
	"testing"

	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/lab/supervisor"
)

// Each bare hop stands in for its part as the lab runs it: on its port,
// behind the edge proxy the part's calls go through, and with the part's
// CPUs (the rpc parts run with parts.SharedProcs(), the stream parts with
// every CPU), so that the ceiling is not lowered by threads the part does
// not have.
func TestBareHopsStandInForTheirParts(t *testing.T) {
	ps := []supervisor.PartStatus{
		{Name: "webserver-rpc", Addr: "127.0.0.1:7710"}, {Name: "ratings-rpc", Addr: "127.0.0.1:7711"}, {Name: "movies-rpc", Addr: "127.0.0.1:7712"},
		{Name: "webserver-stream", Addr: "127.0.0.1:7720"}, {Name: "broker", Addr: "127.0.0.1:7701"},
	}
	info := supervisor.LabInfo{Edges: []supervisor.EdgeInfo{
		{Name: "webserver-rpc->ratings-rpc", Listen: "127.0.0.1:7730"}, {Name: "ratings-rpc->movies-rpc", Listen: "127.0.0.1:7731"},
		{Name: "webserver-stream->broker", Listen: "127.0.0.1:7732"},
	}}
	rpc, err := BareHops(ps, info, "rpc")
	if err != nil {
		t.Fatal(err)
	}
	want := []HopSpec{
		{Part: "webserver-rpc", Variant: "rpc", Listen: "127.0.0.1:7710", Next: "http://127.0.0.1:7730", Status: 201, Procs: parts.SharedProcs()},
		{Part: "ratings-rpc", Variant: "rpc", Listen: "127.0.0.1:7711", Next: "http://127.0.0.1:7731", Status: 200, Procs: parts.SharedProcs()},
		{Part: "movies-rpc", Variant: "rpc", Listen: "127.0.0.1:7712", Status: 200, Procs: parts.SharedProcs()},
	}
	if len(rpc) != len(want) {
		t.Fatalf("rpc hops: %+v", rpc)
	}
	for i := range want {
		if rpc[i] != want[i] {
			t.Errorf("rpc hop %d: %+v, want %+v", i, rpc[i], want[i])
		}
	}
	stream, err := BareHops(ps, info, "stream")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range stream {
		if h.Procs != 0 {
			t.Errorf("stream hop %s: --procs %d, want every CPU (0) as its part", h.Part, h.Procs)
		}
	}
}
