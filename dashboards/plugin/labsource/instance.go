// Package labsource is the lab's Grafana data source: the backend of the
// plugin ratingslab-lab-datasource. It reads what Prometheus cannot give
// Grafana — experiment journals (faults as applied, verdicts, probes,
// recovery, audit), the load generator's ledgers (exact latencies) — from
// the lab's state dir, and the running lab's parts and faults from its
// control API. One Instance serves one data source's settings.
package labsource

import (
	"context"
	"sync"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/instancemgmt"
)

// PluginID is plugin.json's id.
const PluginID = "ratingslab-lab-datasource"

// Instance is one data source: its settings and what it has read.
type Instance struct {
	settings Settings
	// store is nil when no stateDir is set (live only).
	store     *store
	resources backend.CallResourceHandler

	mu      sync.Mutex
	ledgers map[string]ledgerCache
}

var (
	_ backend.QueryDataHandler    = (*Instance)(nil)
	_ backend.CheckHealthHandler  = (*Instance)(nil)
	_ backend.CallResourceHandler = (*Instance)(nil)
)

// NewInstance is the datasource.InstanceFactoryFunc: Grafana calls it for
// each data source (and again when its settings change). Settings that
// cannot work are an error here, so Grafana shows it on every query; a state
// dir that does not exist yet is not (the lab may create it later): queries
// and the health check say so.
func NewInstance(_ context.Context, s backend.DataSourceInstanceSettings) (instancemgmt.Instance, error) {
	set, err := ParseSettings(s.JSONData)
	if err != nil {
		return nil, err
	}
	return New(set), nil
}

// New returns an instance for settings already checked by ParseSettings.
func New(s Settings) *Instance {
	in := &Instance{settings: s, ledgers: map[string]ledgerCache{}}
	if s.StateDir != "" {
		in.store = newStore(s.StateDir)
	}
	in.resources = in.routes()
	return in
}

// CallResource serves the routes in routes.go.
func (in *Instance) CallResource(ctx context.Context, req *backend.CallResourceRequest, sender backend.CallResourceResponseSender) error {
	return in.resources.CallResource(ctx, req, sender)
}
