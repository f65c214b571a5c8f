// Package kv writes a parameter map as text, "k1=v1, k2=v2" in key order:
// the one form fault parameters and lab settings take in `lab chaos`
// output, journals' descriptions, reports and the Grafana plugin.
package kv

import (
	"maps"
	"slices"
	"strings"
)

// Join returns m as "k1=v1, k2=v2", keys sorted; "" for an empty map.
func Join(m map[string]string) string {
	pairs := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		pairs = append(pairs, k+"="+m[k])
	}
	return strings.Join(pairs, ", ")
}
