package faults

import (
	"strings"
	"testing"
)

func testTargets() Targets {
	return Targets{
		Edges:    []string{"webserver-rpc->ratings-rpc", "ratings-rpc->movies-rpc", "ratings-stream->broker"},
		Parts:    []string{"broker", "movies-rpc", "ratings-rpc", "ratings-stream", "ratings-stream-2"},
		Services: map[string]string{"movies-rpc": "127.0.0.1:1", "ratings-rpc": "127.0.0.1:2", "ratings-stream": "127.0.0.1:3", "ratings-stream-2": "127.0.0.1:4", "movies-connect": "127.0.0.1:5"},
		Topics:   []string{"ratings"},
	}
}

// Every fault resolves its defaults to a complete, normalized parameter set.
func TestEveryFaultHasValidDefaults(t *testing.T) {
	for _, k := range Kinds() {
		ps, err := k.Resolve(nil)
		if err != nil {
			t.Errorf("%s: defaults do not validate: %v", k.Name, err)
			continue
		}
		if len(ps) != len(k.Params) {
			t.Errorf("%s: resolved %d params, has %d", k.Name, len(ps), len(k.Params))
		}
		if k.Summary == "" || k.Mechanism == "" || k.Heal == "" {
			t.Errorf("%s: summary, mechanism and heal must be documented", k.Name)
		}
	}
}

func TestResolveNormalizesAndNamesTheBadField(t *testing.T) {
	k, err := Lookup("latency")
	if err != nil {
		t.Fatal(err)
	}
	ps, err := k.Resolve(map[string]string{"latency": "2000ms", "jitter": " 100ms"})
	if err != nil {
		t.Fatal(err)
	}
	if ps["latency"] != "2s" || ps["jitter"] != "100ms" || ps["direction"] != "downstream" || ps["toxicity"] != "1" {
		t.Fatalf("normalized params = %v", ps)
	}
	for _, tc := range []struct {
		fault  string
		params map[string]string
		want   string
	}{
		{"latency", map[string]string{"latency": "soon"}, `params.latency: want a duration`},
		{"latency", map[string]string{"latency": "2m"}, `params.latency: must be from 0s to 1m0s`},
		{"latency", map[string]string{"lag": "1s"}, `params.lag: latency has no parameter "lag" (valid: latency, jitter, direction, toxicity)`},
		{"latency", map[string]string{"direction": "sideways"}, `params.direction: must be one of downstream, upstream, both`},
		{"error_rate", map[string]string{"rate": "1.5"}, `params.rate: must be from 0 to 1, got 1.5`},
		{"poison", map[string]string{"count": "2.5"}, `params.count: want a whole number`},
		{"poison", map[string]string{"count": "0"}, `params.count: must be from 1 to 1000`},
		{"partition", map[string]string{"latency": "1s"}, `params.latency: partition has no parameter "latency" (valid: none)`},
	} {
		k, err := Lookup(tc.fault)
		if err != nil {
			t.Fatal(err)
		}
		_, err = k.Resolve(tc.params)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %v: error %v, want it to contain %q", tc.fault, tc.params, err, tc.want)
		}
	}
}

func TestLookupAcceptsHyphensAndNamesValidFaults(t *testing.T) {
	if k, err := Lookup("reset-peer"); err != nil || k.Name != "reset_peer" {
		t.Fatalf("reset-peer → %v, %v", k.Name, err)
	}
	_, err := Lookup("meteor")
	if err == nil || !strings.Contains(err.Error(), "valid: latency, timeout") {
		t.Fatalf("unknown fault error = %v", err)
	}
}

func TestValidateChecksTargetsAndDuration(t *testing.T) {
	tg := testTargets()
	for _, tc := range []struct {
		req  Request
		want string
	}{
		{Request{Fault: "latency", Target: "movies-rpc"}, `target "movies-rpc": latency applies to edges: ratings-rpc->movies-rpc, ratings-stream->broker, webserver-rpc->ratings-rpc`},
		{Request{Fault: "kill", Target: "nowhere"}, `target "nowhere": kill applies to parts: broker, movies-rpc`},
		{Request{Fault: "kill"}, `target: kill needs a target`},
		{Request{Fault: "slow_db", Target: "ratings-rpc"}, `slow_db applies to parts: movies-connect, movies-rpc`},
		{Request{Fault: "throttle", Target: "movies-rpc"}, `throttle applies to parts: ratings-stream, ratings-stream-2`},
		{Request{Fault: "kill", Target: "broker", For: "soon"}, `for: want a duration`},
		{Request{Fault: "kill", Target: "broker", For: "-1s"}, `for: must be more than 0`},
		{Request{Fault: "poison", Target: "ratings", For: "10s"}, `for: poison takes effect once`},
		{Request{Fault: "nope", Target: "broker"}, `fault: unknown fault "nope"`},
	} {
		_, _, _, err := Validate(tc.req, tg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want it to contain %q", tc.req, err, tc.want)
		}
	}
	if _, _, d, err := Validate(Request{Fault: "throttle", Target: "ratings-stream-2", For: "30s"}, tg); err != nil || d.String() != "30s" {
		t.Fatalf("valid request: %v, %v", d, err)
	}
}

func TestBasePart(t *testing.T) {
	for in, want := range map[string]string{"ratings-stream-2": "ratings-stream", "ratings-stream": "ratings-stream", "movies-rpc": "movies-rpc", "broker": "broker"} {
		if got := BasePart(in); got != want {
			t.Errorf("BasePart(%q) = %q, want %q", in, got, want)
		}
	}
}

// Every fault carries its effect in its catalog entry, of the kind its
// targets take, and the parameters that effect reads exist.
func TestEveryFaultCarriesItsEffect(t *testing.T) {
	for _, k := range Kinds() {
		switch a := k.act.(type) {
		case nil:
			t.Errorf("%s: no effect in its catalog entry", k.Name)
		case edgeToxic:
			if k.Targets != TargetEdge || a.Type == "" {
				t.Errorf("%s: a toxic on a %s fault, type %q", k.Name, k.Targets, a.Type)
			}
			for _, name := range a.Attributes {
				if _, ok := k.Param(name); !ok {
					t.Errorf("%s: toxic attribute %s is no parameter", k.Name, name)
				}
			}
		case adminEndpoint:
			if _, ok := k.Param(a.Param); !ok || k.Targets != TargetService || !strings.HasPrefix(a.Path, "/admin/") || a.Field == "" {
				t.Errorf("%s: admin endpoint %+v does not fit the fault", k.Name, a)
			}
		case processAction:
			if k.Targets != TargetPart || a.Apply == "" {
				t.Errorf("%s: process action %+v does not fit the fault", k.Name, a)
			}
		}
	}
}

// An edge fault's toxics are its entry's type with its parameters as
// attributes (durations in ms), one per direction.
func TestEdgeFaultsBecomeTheirToxics(t *testing.T) {
	toxics := func(name string, given map[string]string) []toxic {
		k, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		ps, err := k.Resolve(given)
		if err != nil {
			t.Fatal(err)
		}
		e := k.act.effectOn(&Injector{}, &record{Fault: Fault{ID: "f-1", Params: ps}, kind: k}, 0).(*edgeEffect)
		return e.toxics()
	}
	lat := toxics("latency", map[string]string{"latency": "2s", "jitter": "100ms", "toxicity": "0.5"})
	if len(lat) != 1 || lat[0].Type != "latency" || lat[0].Stream != "downstream" || lat[0].Toxicity != 0.5 || lat[0].Name != "lab-f-1-downstream" ||
		lat[0].Attributes["latency"] != int64(2000) || lat[0].Attributes["jitter"] != int64(100) {
		t.Errorf("latency: %+v", lat)
	}
	bw := toxics("bandwidth", map[string]string{"rate": "64", "direction": "both"})
	if len(bw) != 2 || bw[0].Stream != "upstream" || bw[1].Stream != "downstream" || bw[0].Attributes["rate"] != int64(64) {
		t.Errorf("bandwidth both ways: %+v", bw)
	}
	part := toxics("partition", nil)
	if len(part) != 2 || part[0].Type != "timeout" || part[0].Attributes["timeout"] != 0 || part[0].Toxicity != 1 {
		t.Errorf("partition: %+v", part)
	}
}
