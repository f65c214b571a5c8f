// Package audit checks each variant's final state against the load
// generator's ledger, by the outcomes of docs/api.md: acknowledged writes
// lost, duplicates, writes applied although the answer was a definite no
// (phantoms: a bug), ambiguous writes (504 or no answer) applied or not
// (both correct), and valid ratings answered with a 4xx (unexpected
// rejections: a failure of the variant).
//
// The check is exact integer arithmetic per movie, on counts and on sums in
// tenths of a point. For a movie with baseline count B (before the run), A
// acknowledged ratings, M ambiguous ones and P that reached the variant but
// were answered with a definite failure (4xx, 503, 500), the observed count C
// must lie in [B+A, B+A+M]; below is loss, above is a phantom (up to P) and
// beyond that a duplicate. The observed sum must lie between the smallest and the largest
// sum that the observed count allows (choosing the cheapest / dearest
// ambiguous ratings); outside is a sum mismatch. Each finding is the smallest
// number of such events that explains what was observed: a count check cannot
// tell which request was lost or duplicated, only how many at least.
package audit
