//go:build race

package faults

// raceEnabled: the race detector slows everything ~10x, so tests that
// measure rates or timing skip those assertions under it.
const raceEnabled = true
