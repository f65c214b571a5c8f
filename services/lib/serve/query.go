package serve

import (
	"net/url"
	"slices"
	"strings"
)

// ParamError is a bad query string, naming the parameter ("query" when the
// query string as a whole is malformed).
type ParamError struct {
	Param string
	Msg   string
}

func (e *ParamError) Error() string { return e.Param + ": " + e.Msg }

// Query parses a raw query string strictly. r.URL.Query() silently drops
// what it cannot parse — "?offset=%zz" or "?limit=5;offset=3" would read as
// no parameter at all and serve the default page — so here a malformed
// escape, a ';' separator and a parameter given twice are errors naming the
// parameter, and so is a parameter not in allowed (unless allowed is nil).
func Query(raw string, allowed []string) (url.Values, *ParamError) {
	q := url.Values{}
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		if strings.Contains(part, ";") {
			return nil, &ParamError{"query", "';' is not a separator: parameters are separated by ampersands (in " + quoteClip(part) + ")"}
		}
		rawKey, rawValue, _ := strings.Cut(part, "=")
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			return nil, &ParamError{"query", "malformed parameter name " + quoteClip(rawKey)}
		}
		value, err := url.QueryUnescape(rawValue)
		if err != nil {
			return nil, &ParamError{clipName(key), "malformed value " + quoteClip(rawValue) + " (bad %-escape)"}
		}
		if allowed != nil && !slices.Contains(allowed, key) {
			return nil, &ParamError{clipName(key), "unknown parameter (allowed: " + strings.Join(allowed, ", ") + ")"}
		}
		if q.Has(key) {
			return nil, &ParamError{clipName(key), "given twice"}
		}
		q.Set(key, value)
	}
	return q, nil
}

func quoteClip(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}

func clipName(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
