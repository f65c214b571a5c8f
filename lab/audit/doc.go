// Package audit checks each variant's final state against the load
// generator's ledger: acknowledged writes lost, duplicates, writes applied
// although the client saw a failure (phantoms), and ambiguous writes (no
// answer) that were or were not applied.
//
// The check is exact integer arithmetic per movie, on counts and on sums in
// tenths of a point. For a movie with baseline count B (before the run), A
// acknowledged ratings, M ambiguous ones and P that reached the variant but
// were answered with an error (5xx) or rejected, the observed count C must lie
// in [B+A, B+A+M]; below is loss, above is a phantom (up to P) and beyond that
// a duplicate. The observed sum must lie between the smallest and the largest
// sum that the observed count allows (choosing the cheapest / dearest
// ambiguous ratings); outside is a sum mismatch. Each finding is the smallest
// number of such events that explains what was observed: a count check cannot
// tell which request was lost or duplicated, only how many at least.
package audit
