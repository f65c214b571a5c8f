package cli

import (
	"slices"
	"strings"
	"testing"

	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/parts"
)

// lab up --standby-replicas N needs N+1 ratings-stream replicas and the
// changelog; a good value reaches every replica's command line.
func TestStandbyReplicasAreCheckedAndReachEveryReplica(t *testing.T) {
	up := func(standby int, extra func(o *parts.Options)) (parts.Options, error) {
		o := parts.Options{Delivery: "effectively-once", Replicas: map[string]int{"ratings-stream": 2}}
		if extra != nil {
			extra(&o)
		}
		o.StandbyReplicas = standby
		return o, checkStandby(standby, o)
	}
	o, err := up(1, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := parts.Lookup("ratings-stream")
	if err != nil {
		t.Fatal(err)
	}
	env := parts.Env{Ports: layout.Ports{Base: 8000}, Dir: layout.Dir("/tmp/x"), Options: o}
	for i := range 2 {
		args := p.Args(env, i)
		if at := slices.Index(args, "--standby-replicas"); at < 0 || args[at+1] != "1" {
			t.Errorf("replica %d's command line %v has no --standby-replicas 1", i, args)
		}
	}
	if o, _ := up(0, nil); slices.Contains(p.Args(parts.Env{Options: o}, 0), "--standby-replicas") {
		t.Error("--standby-replicas passed on with 0")
	}
	for name, c := range map[string]struct {
		n     int
		extra func(o *parts.Options)
		want  string
	}{
		"negative":      {-1, nil, "must be 0 (none) or more"},
		"no other":      {2, nil, "start at least 3 (--replicas ratings-stream=3)"},
		"one replica":   {1, func(o *parts.Options) { o.Replicas = nil }, "start at least 2"},
		"restore log":   {1, func(o *parts.Options) { o.Restore = "log" }, "--restore changelog only"},
		"transactional": {1, func(o *parts.Options) { o.Delivery = "transactional" }, "--delivery effectively-once"},
		"at-least-once": {1, func(o *parts.Options) { o.Delivery = "at-least-once" }, "--delivery effectively-once"},
	} {
		if _, err := up(c.n, c.extra); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, c.want)
		}
	}
}
