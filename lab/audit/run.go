package audit

import (
	"context"
	"net/http"
	"sort"

	"github.com/ratingslab/lab/lab/layout"
	"github.com/ratingslab/lab/lab/load/ledger"
)

// Inputs are everything an audit of a run needs.
type Inputs struct {
	Variants []string
	Entries  []ledger.Entry
	// Baseline: states before the run, by variant and source. A missing
	// baseline is taken as empty (and the result says so).
	Baseline []Snapshot
	// Final: states after the drain, by variant and source.
	Final []Snapshot
	// Applied: per variant, the request ids its store applied, where the
	// store keeps them (ratings-rpc).
	Applied map[string]map[string]AppliedRequest
}

// All audits every final snapshot, ordered by variant (in Variants order)
// then source (api before store).
func All(in Inputs) []Result {
	order := map[string]int{}
	for i, v := range in.Variants {
		order[v] = i
	}
	finals := append([]Snapshot(nil), in.Final...)
	sort.SliceStable(finals, func(i, j int) bool {
		if finals[i].Variant != finals[j].Variant {
			return order[finals[i].Variant] < order[finals[j].Variant]
		}
		return finals[i].Source < finals[j].Source
	})
	var out []Result
	for _, f := range finals {
		base, found := findSnapshot(in.Baseline, f.Variant, f.Source)
		if !found {
			// The API and the store describe the same aggregates; the
			// other source's baseline is a better guess than nothing.
			other := SourceStore
			if f.Source == SourceStore {
				other = SourceAPI
			}
			base, found = findSnapshot(in.Baseline, f.Variant, other)
		}
		r := Check(f.Variant, in.Entries, base, f)
		if !found {
			r.Notes = append(r.Notes, "no baseline: assumed the variant started empty, so ratings from before the run count as duplicates")
		}
		if f.Source == SourceAPI {
			if note := baselineNote(in.Baseline, f.Variant); note != "" {
				r.Notes = append(r.Notes, note)
			}
		}
		if applied := in.Applied[f.Variant]; applied != nil && f.Source == SourceStore && r.Checked {
			r.Requests = CheckRequests(f.Variant, in.Entries, applied)
			r.OK = r.OK && r.Requests.OK()
		}
		out = append(out, r)
	}
	return out
}

func findSnapshot(list []Snapshot, variant, source string) (Snapshot, bool) {
	for _, s := range list {
		if s.Variant == variant && s.Source == source && s.Error == "" {
			return s, true
		}
	}
	return Snapshot{Variant: variant, Source: source}, false
}

// Observe reads every variant's state through its public API (apis maps
// variant → base URL) and from its own store in dir.
func Observe(ctx context.Context, client *http.Client, dir layout.Dir, variants []string, apis map[string]string) []Snapshot {
	var out []Snapshot
	for _, v := range variants {
		if u, ok := apis[v]; ok {
			out = append(out, ReadAPI(ctx, client, v, u))
		}
		out = append(out, ReadStore(ctx, dir, v))
	}
	return out
}

// ReadApplied reads the idempotency records of the variants whose store
// keeps one (ratings-rpc); variants without are absent.
func ReadApplied(ctx context.Context, dir layout.Dir, variants []string) map[string]map[string]AppliedRequest {
	out := map[string]map[string]AppliedRequest{}
	for _, v := range variants {
		if v != VariantRPC {
			continue
		}
		if applied, err := ReadRPCApplied(ctx, RPCStorePath(dir)); err == nil {
			out[v] = applied
		}
	}
	return out
}

// Spec says what to audit after a run (the drain done).
type Spec struct {
	Dir    layout.Dir
	Ledger string // path of the load generator's ledger
	// APIs maps variant → public base URL; by default the targets the
	// ledger recorded.
	APIs map[string]string
	// Baseline: the states read before the run (see Observe).
	Baseline []Snapshot
	Client   *http.Client
}

// Run reads the ledger and every variant's state now (public API and own
// store) and audits them. The variants are the ledger's.
func Run(ctx context.Context, spec Spec) (final []Snapshot, results []Result, err error) {
	l, err := ledger.Read(spec.Ledger)
	if err != nil {
		return nil, nil, err
	}
	apis := spec.APIs
	if apis == nil {
		apis = l.Header.Targets
	}
	variants := l.Header.Variants
	final = Observe(ctx, spec.Client, spec.Dir, variants, apis)
	results = All(Inputs{
		Variants: variants,
		Entries:  l.Entries,
		Baseline: spec.Baseline,
		Final:    final,
		Applied:  ReadApplied(ctx, spec.Dir, variants),
	})
	if !l.Complete() {
		for i := range results {
			results[i].Notes = append(results[i].Notes, "ledger has no end line (the load generator died?): requests sent without an entry count as unknown writes")
		}
	}
	return final, results, nil
}
