package load

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Every run is bounded in time and count. Beyond the soft bounds a run
// needs --force; the hard bounds hold even then.
const (
	SoftMaxDuration = 15 * time.Minute
	HardMaxDuration = 24 * time.Hour
	SoftMaxRequests = 10_000_000 // per variant
	HardMaxRequests = 500_000_000
	SoftMaxRate     = 50_000 // requests/s per variant
)

// CheckBounds rejects a schedule beyond the bounds, naming the flag to change.
func CheckBounds(a Arrival, force bool) error {
	d, n, peak := a.TotalDuration(), a.ExpectedRequests(), a.PeakRate()
	switch {
	case d > HardMaxDuration:
		return fmt.Errorf("--duration %s: longer than the hard limit %s", d, HardMaxDuration)
	case n > HardMaxRequests:
		return fmt.Errorf("the schedule holds %d requests per variant, more than the hard limit %d", n, HardMaxRequests)
	case force:
		return nil
	case d > SoftMaxDuration:
		return fmt.Errorf("--duration %s: longer than %s; add --force if you mean it", d, SoftMaxDuration)
	case n > SoftMaxRequests:
		return fmt.Errorf("the schedule holds %d requests per variant, more than %d; add --force if you mean it", n, SoftMaxRequests)
	case peak > SoftMaxRate:
		return fmt.Errorf("--rate %s/s: above %d/s per variant; add --force if you mean it", fmtRate(peak), SoftMaxRate)
	}
	return nil
}

// ParseRate reads a rate flag: "500", "500/s", "30/m", "1/500ms".
func ParseRate(s string) (float64, error) {
	num, per, found := strings.Cut(strings.TrimSpace(s), "/")
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
		return 0, fmt.Errorf("--rate %q: want requests per second like 500/s", s)
	}
	if n <= 0 {
		return 0, fmt.Errorf("--rate %q: must be > 0", s)
	}
	if !found {
		return n, nil
	}
	var unit time.Duration
	switch per {
	case "s":
		unit = time.Second
	case "m":
		unit = time.Minute
	case "h":
		unit = time.Hour
	default:
		if unit, err = time.ParseDuration(per); err != nil || unit <= 0 {
			return 0, fmt.Errorf("--rate %q: the unit after / must be s, m, h or a duration", s)
		}
	}
	return n / unit.Seconds(), nil
}
