// Package kv writes a parameter map as text, "k1=v1, k2=v2" in key order:
// the one form fault parameters and lab settings take in `lab chaos`
// output, journals' descriptions, reports and the Grafana plugin.
package kv

import (
	"slices"
	"strings"
)

// Join returns m as "k1=v1, k2=v2", keys sorted; "" for an empty map.
func Join(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k + "=" + m[k])
	}
	return b.String()
}
