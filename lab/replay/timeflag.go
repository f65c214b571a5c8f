package replay

import (
	"fmt"
	"strings"
	"time"
)

// ParseTime reads a time given on the command line:
//
//	2026-01-02T15:04:05Z, 2026-01-02T15:04:05.123+01:00   RFC 3339
//	2026-01-02T15:04:05, 2026-01-02 15:04:05               local time
//	now, -10m, -1h30m                                      relative to now
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "now":
		return now, nil
	case strings.HasPrefix(s, "-"):
		d, err := time.ParseDuration(s[1:])
		if err != nil || d <= 0 {
			return time.Time{}, fmt.Errorf("%q: a relative time is a duration before now, such as -10m or -2h", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time (2026-01-02T15:04:05Z), a local one (2026-01-02 15:04:05), now, or -10m", s)
}
