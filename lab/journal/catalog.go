package journal

import (
	"strconv"
	"time"

	"github.com/ratingslab/lab/services/lib/duration"
)

// CatalogEdit is an experiment's movie-add as it happened, and how each
// variant answered the ratings of the new movie: whether, and how soon, the
// edit reached it ("catalog convergence"), and what it answered meanwhile.
type CatalogEdit struct {
	ID      string `json:"id"` // the method step ("m2")
	MovieID int64  `json:"movie_id,omitempty"`
	Title   string `json:"title"`
	// PlannedAt is the schedule's offset; AddedAt when the legacy catalog
	// committed the movie (zero when it was not added: Error says why).
	PlannedAt duration.Duration `json:"planned_at"`
	AddedAt   time.Time         `json:"added_at"`
	// RefuseUntil is the offset from the start until which a refusal (422)
	// of the new movie was owed, provided the variant had not taken one yet.
	RefuseUntil duration.Duration    `json:"refuse_until"`
	Error       string               `json:"error,omitempty"`
	Variants    []CatalogConvergence `json:"variants"`
}

// CatalogConvergence is one variant's answers to the ratings of the new
// movie, from the ledger.
type CatalogConvergence struct {
	Variant string `json:"variant"`
	// Sent counts the ratings of the new movie; Acknowledged, Refused
	// (4xx), Failed (5xx but 504, never sent) and Ambiguous (504, no
	// answer) split them. RefusedLate are refusals not owed — another
	// status than 422, sent after RefuseUntil, or sent after Converged —:
	// failures.
	Sent         int64 `json:"sent"`
	Acknowledged int64 `json:"acknowledged"`
	Refused      int64 `json:"refused"`
	RefusedLate  int64 `json:"refused_late"`
	Failed       int64 `json:"failed"`
	Ambiguous    int64 `json:"ambiguous"`
	// Converged is when the variant is known to have seen the new movie:
	// the first answer (send + latency) of an acknowledged rating of it;
	// nil when none was. AfterEdit is Converged − AddedAt, AfterHeal
	// Converged − the heal of the last fault active at the edit in this
	// variant (nil when none was; 0 when it came as the heal completed).
	Converged *time.Time         `json:"converged,omitempty"`
	AfterEdit *duration.Duration `json:"after_edit,omitempty"`
	AfterHeal *duration.Duration `json:"after_heal,omitempty"`
}

// Figures are the catalog edit's rows as the terminal and the report show
// them: a figure's name, then one cell per variant (in Variants' order).
func (c CatalogEdit) Figures() [][]string {
	rows := [][]string{
		{"catalog convergence (edit → first 2xx for it)"},
		{"  of which after the heal"},
		{"ratings of the new movie"},
		{"  taken (2xx)"},
		{"  refused (422) while not yet converged: owed"},
		{"  refused when not owed: failures"},
		{"  failed (5xx, not sent)"},
		{"  ambiguous (504, no answer)"},
	}
	for _, v := range c.Variants {
		conv, heal := "never", "—"
		if v.AfterEdit != nil {
			conv = time.Duration(*v.AfterEdit).Round(time.Millisecond).String()
		}
		if v.AfterHeal != nil {
			heal = time.Duration(*v.AfterHeal).Round(time.Millisecond).String()
		}
		for i, cell := range []string{conv, heal, count(v.Sent), count(v.Acknowledged), count(v.Refused - v.RefusedLate),
			count(v.RefusedLate), count(v.Failed), count(v.Ambiguous)} {
			rows[i] = append(rows[i], cell)
		}
	}
	return rows
}

func count(n int64) string { return strconv.FormatInt(n, 10) }
