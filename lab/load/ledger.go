package load

import "github.com/ratingslab/lab/lab/load/ledger"

// The ledger types live in package ledger so that readers (audit, replay)
// need not import the load engine; these aliases keep `load.ReadLedger` and
// friends as the documented entry points.
type (
	Ledger       = ledger.Ledger
	LedgerHeader = ledger.Header
	LedgerEntry  = ledger.Entry
	LedgerEnd    = ledger.End
)

// ReadLedger reads a ledger file written by `lab load`.
func ReadLedger(path string) (*Ledger, error) { return ledger.Read(path) }
