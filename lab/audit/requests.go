package audit

import (
	"sort"

	"github.com/ratingslab/lab/lab/load/ledger"
)

// maxListedIDs bounds the request ids a result names; counts stay exact.
const maxListedIDs = 20

// RequestCheck is the audit by request id, possible where the store keeps
// an idempotency record (ratings-rpc's applied_requests). Unlike the count
// arithmetic it names the requests and needs no "at least".
type RequestCheck struct {
	Lost                int64 `json:"lost"`
	Phantoms            int64 `json:"phantoms"`
	AmbiguousApplied    int64 `json:"ambiguous_applied"`
	AmbiguousNotApplied int64 `json:"ambiguous_not_applied"`
	// Altered counts requests applied to another movie or with another
	// rating than the ledger sent.
	Altered int64 `json:"altered"`
	// First ids (sorted) of each kind, at most 20.
	LostIDs    []string `json:"lost_ids,omitempty"`
	PhantomIDs []string `json:"phantom_ids,omitempty"`
	AlteredIDs []string `json:"altered_ids,omitempty"`
}

// OK: nothing lost, no phantom, nothing altered.
func (c *RequestCheck) OK() bool { return c.Lost == 0 && c.Phantoms == 0 && c.Altered == 0 }

// CheckRequests compares the variant's ledger entries with the set of
// request ids its store applied. Applied ids the ledger does not know
// (ratings from before the run, or from another client) are not its
// business.
func CheckRequests(variant string, entries []ledger.Entry, applied map[string]AppliedRequest) *RequestCheck {
	c := &RequestCheck{}
	for _, e := range entries {
		if e.Variant != variant {
			continue
		}
		a, ok := applied[e.RequestID]
		if ok && (a.MovieID != e.MovieID || a.SumTenths != e.RatingTenths) {
			c.Altered++
			c.AlteredIDs = append(c.AlteredIDs, e.RequestID)
		}
		switch e.Outcome {
		case ledger.Acknowledged:
			if !ok {
				c.Lost++
				c.LostIDs = append(c.LostIDs, e.RequestID)
			}
		case ledger.Ambiguous:
			if ok {
				c.AmbiguousApplied++
			} else {
				c.AmbiguousNotApplied++
			}
		case ledger.Failed, ledger.Rejected:
			if ok {
				c.Phantoms++
				c.PhantomIDs = append(c.PhantomIDs, e.RequestID)
			}
		}
	}
	for _, ids := range []*[]string{&c.LostIDs, &c.PhantomIDs, &c.AlteredIDs} {
		sort.Strings(*ids)
		if len(*ids) > maxListedIDs {
			*ids = (*ids)[:maxListedIDs]
		}
	}
	return c
}
