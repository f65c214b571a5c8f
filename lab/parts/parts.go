// Package parts is the lab's table of parts: what each one is, how the
// supervisor starts it (`lab serve <part> <args>`), where it listens and how its
// health is checked. The supervisor and the CLI read this table; the services
// themselves know nothing about it.
package parts

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"slices"
	"sort"

	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/services/lib/variantname"
)

// Variant groups parts by integration pattern.
type Variant string

const (
	VariantLab    Variant = "lab"              // shared infrastructure: broker
	VariantRPC    Variant = variantname.RPC    // synchronous RPC with circuit breakers
	VariantStream Variant = variantname.Stream // Kafka event log
)

// Runner is one part's process body: it registers its flags, then serves until
// ctx is cancelled (SIGTERM) and returns nil on a clean stop.
type Runner interface {
	Flags(fs *flag.FlagSet)
	Run(ctx context.Context, log *slog.Logger) error
}

// Options are the lab-wide switches `lab up` passes on to parts.
type Options struct {
	Breakers bool   // circuit breakers in the RPC variant
	Delivery string // ratings-stream delivery: "effectively-once", "at-least-once" or "transactional"
	// Restore is how effectively-once ratings-stream replicas take
	// partitions over: "" (the changelog) or "log" (lab up --restore).
	Restore  string              `json:",omitempty"`
	Replicas map[string]int      // e.g. ratings-stream=2
	Extra    map[string][]string // extra flags per part, appended last (lab up --part-flag)
	// StandbyReplicas is how many other ratings-stream replicas keep a warm
	// copy of each partition's state (lab up --standby-replicas; 0: none).
	StandbyReplicas int `json:",omitempty"`
	// Format is the log's event format: "json" or "avro" (model.ParseFormat).
	Format string `json:",omitempty"`
	// Registry says which schema registry runs: RegistryEmbedded (""),
	// RegistryApicurio, or RegistryExternal at RegistryURL.
	Registry    string       `json:",omitempty"`
	RegistryURL string       `json:",omitempty"`
	Kafka       KafkaOptions `json:",omitzero"` // which Kafka the log variant uses
}

// Env is what a part's argument builder may know about the lab.
type Env struct {
	Ports   layout.Ports
	Dir     layout.Dir
	Options Options
}

// Part describes one kind of part. A part with Replicas > 1 runs as
// name, name-2, ... (instances).
type Part struct {
	Name    string
	Variant Variant
	Summary string
	// Start orders startup: lower first; parts with equal Start start together.
	Start int
	// NewRunner returns the process body for `lab serve <name>`.
	NewRunner func() Runner
	// Args builds the command line for instance i (0-based).
	Args func(env Env, i int) []string
	// HTTP returns the instance's public HTTP address: its API and page
	// (nil for parts without one, such as the broker).
	HTTP func(p layout.Ports, i int) string
	// Admin returns the instance's loopback admin listener: /healthz,
	// /metrics, /debug/pprof/, /admin/ (the public offset + 64). Register
	// derives it from HTTP when unset; nil for parts without one (a real
	// Kafka node). The supervisor passes it as --admin-listen and probes
	// its /healthz.
	Admin func(p layout.Ports, i int) string
	// Ready, when set, replaces the admin /healthz probe (a process that
	// speaks only Kafka).
	Ready func(ctx context.Context, p layout.Ports, i int) error
	// Addr is the address shown in `lab status` (defaults to HTTP).
	Addr func(p layout.Ports, i int) string
	// MaxReplicas bounds --replicas for this part (1 when it cannot scale).
	MaxReplicas int
	// Exec, when set and it returns a path, runs that program instead of
	// `lab serve <name>` (Apicurio Registry runs with Java).
	Exec func(env Env, i int) (path string, args []string, err error)
	// Enabled, when set, says whether the part runs with these options
	// (no registry part when the lab uses an external one).
	Enabled func(o Options) bool
	// AdminFor, when set, replaces Admin for a lab started with o (Apicurio
	// serves its health and metrics on its public port).
	AdminFor func(o Options, p layout.Ports, i int) string
	// Count, when set, is how many instances the part runs (instead of
	// --replicas), e.g. the nodes of a Kafka cluster.
	Count func(o Options) int
	// NameOf, when set, names instance i (instead of InstanceName).
	NameOf func(i int) string
	// Setup, when set, runs once in the supervisor after every instance of
	// the part was started and before the parts of later Start tiers start
	// (a cluster's topics are created here). An error stops the lab.
	Setup func(ctx context.Context, env Env) error
}

// AdminAddr is instance i's admin listener in a lab started with o ("" when
// it has none).
func (p *Part) AdminAddr(o Options, ports layout.Ports, i int) string {
	switch {
	case p.AdminFor != nil:
		return p.AdminFor(o, ports, i)
	case p.Admin != nil:
		return p.Admin(ports, i)
	}
	return ""
}

// Program is the program instance i runs instead of `lab serve <name>`
// ("" for lab serve).
func (p *Part) Program(env Env, i int) (string, []string, error) {
	if p.Exec == nil {
		return "", nil, nil
	}
	return p.Exec(env, i)
}

// Instances is how many instances of p a lab started with o runs (0: none).
func (p *Part) Instances(o Options) int {
	if p.Enabled != nil && !p.Enabled(o) {
		return 0
	}
	if p.Count != nil {
		return p.Count(o)
	}
	return max(o.Replicas[p.Name], 1)
}

// Instance is the name of instance i of p.
func (p *Part) Instance(i int) string {
	if p.NameOf != nil {
		return p.NameOf(i)
	}
	return InstanceName(p.Name, i)
}

var registry = map[string]*Part{}

// Register adds a part; called from init functions of this package's files.
func Register(p *Part) {
	if _, dup := registry[p.Name]; dup {
		panic("parts: duplicate part " + p.Name)
	}
	if p.MaxReplicas == 0 {
		p.MaxReplicas = 1
	}
	if p.Admin == nil && p.HTTP != nil {
		public := p.HTTP
		p.Admin = func(ports layout.Ports, i int) string { return ports.Admin(public(ports, i)) }
	}
	registry[p.Name] = p
}

// Lookup returns the part called name, or an error listing the valid names.
func Lookup(name string) (*Part, error) {
	if p, ok := registry[name]; ok {
		return p, nil
	}
	return nil, fmt.Errorf("unknown part %q (valid parts: %v)", name, Names())
}

// All returns every part in start order, then by name.
func All() []*Part {
	ps := make([]*Part, 0, len(registry))
	for _, p := range registry {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Start != ps[j].Start {
			return ps[i].Start < ps[j].Start
		}
		return ps[i].Name < ps[j].Name
	})
	return ps
}

// Names lists the part names, sorted.
func Names() []string {
	var ns []string
	for n := range registry {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	return ns
}

// InstanceName is the name of replica i of part: "ratings-stream", "ratings-stream-2", ...
func InstanceName(part string, i int) string {
	if i == 0 {
		return part
	}
	return fmt.Sprintf("%s-%d", part, i+1)
}
