// Package bench measures the running lab as a whole: the highest rating
// rate each variant sustains under an exact p99 bound and a success ratio
// (a step search, every variant loaded at once), the same search against
// bare hops — trivial handlers on the parts' own ports behind the same edge
// proxies, the physical limit of each variant's topology on this machine —
// and the CPU every part spends per acknowledged rating, read from /proc.
//
// `lab bench post` and `lab bench profile` (lab/cli) drive it.
package bench
