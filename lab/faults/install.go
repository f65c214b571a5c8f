package faults

import (
	"context"
	"log/slog"
	"time"

	"github.com/rs/zerolog"

	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/lab/supervisor"
	"github.com/ratingslab/lab/services/model"
)

// Install puts an injector into a supervisor: its API on the control API,
// lab_fault_active on the supervisor's /metrics, and healing of every fault
// before the parts stop. Call it before the supervisor runs.
func Install(s *supervisor.Supervisor, log *slog.Logger) *Injector {
	quietToxics()
	inj := New(Config{
		Proxies:    s.Edges().Server(),
		Held:       s.Edges().Held,
		Processes:  s,
		Targets:    LabTargets(s),
		Brokers:    s.Config().Options.KafkaBootstrap(s.Config().Ports),
		Registry:   parts.RegistryURL(s.Config().Ports, s.Config().Options),
		Registerer: s.Registry(),
		Log:        log,
	})
	inj.Routes(s.Handle)
	s.OnShutdown(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, 8*time.Second)
		defer cancel()
		inj.Shutdown(ctx)
	})
	return inj
}

// quietToxics silences Toxiproxy's toxics, which log every chunk they
// touch at trace level through zerolog's global logger.
func quietToxics() { zerolog.SetGlobalLevel(zerolog.WarnLevel) }

// LabTargets lists what a supervisor's lab offers to faults.
func LabTargets(s *supervisor.Supervisor) Targets {
	cfg := s.Config()
	return TargetsFor(cfg.Options, cfg.Ports)
}

// TargetsFor lists the targets of a lab started with opts on ports (the
// edges, parts and services of the part table).
func TargetsFor(opts parts.Options, ports layout.Ports) Targets {
	t := Targets{Services: map[string]string{}, Variants: map[string]string{}, Topics: []string{model.TopicRatings}, Kafka: map[string]string{}}
	t.Platform, t.KafkaNodes = opts.Kafka.PlatformName(), len(opts.KafkaNodes(ports))
	t.Groups = []string{"ratings-stream"}
	if opts.Kafka.PlatformName() == parts.KafkaEmbedded {
		t.Kafka["broker"] = ports.AdminBroker() // protocol faults: the embedded broker only
	}
	for _, e := range parts.EdgesFor(opts) {
		t.Edges = append(t.Edges, e.Name)
		t.Variants[e.Name] = string(e.Variant)
	}
	for _, in := range supervisor.Instances(opts) {
		t.Parts = append(t.Parts, in.Name)
		t.Variants[in.Name] = string(in.Part.Variant)
		if in.Part.HTTP != nil && in.Part.Admin != nil {
			t.Services[in.Name] = in.Part.AdminAddr(opts, ports, in.Index)
		}
	}
	return t
}
