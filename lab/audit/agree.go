package audit

import "fmt"

// Disagreement compares a variant's API snapshot with its store snapshot
// taken together: the movies whose count or sum differ, and the ratings by
// which the API's counts are behind the store's (negative: ahead). Both are
// zero when they agree, or when either could not be read.
//
// The stream variant's API is a projection of its store (webserver-stream's
// view of rated-movies) and may lag it; a baseline taken while it lags makes
// the ratings it was behind count as duplicates in the API's audit (and the
// store's audit unchanged), so a run waits for the two to agree before its
// baseline, and the audit notes a baseline taken while they did not.
func Disagreement(api, store Snapshot) (movies int, behind int64) {
	if api.Error != "" || store.Error != "" {
		return 0, 0
	}
	a, s := byMovie(api), byMovie(store)
	for id, sm := range s {
		if am := a[id]; am != sm {
			movies++
			behind += sm.Count - am.Count
		}
	}
	for id, am := range a {
		if _, ok := s[id]; !ok && (am.Count != 0 || am.SumTenths != 0) {
			movies++
			behind -= am.Count
		}
	}
	return movies, behind
}

// baselineNote qualifies the API's audit of a variant whose baseline API
// snapshot disagreed with its store snapshot (see Disagreement).
func baselineNote(baseline []Snapshot, variant string) string {
	api, okA := findSnapshot(baseline, variant, SourceAPI)
	store, okS := findSnapshot(baseline, variant, SourceStore)
	if !okA || !okS {
		return ""
	}
	movies, behind := Disagreement(api, store)
	if movies == 0 {
		return ""
	}
	return fmt.Sprintf("baseline: the API differed from the store on %d movie(s) when the run started (%d rating(s) behind): the API's findings include that difference, the store's do not", movies, behind)
}
