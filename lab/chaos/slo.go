package chaos

import (
	"fmt"
	"strconv"
	"time"
)

// SLO is the lab's one service-level objective: what a user of either
// variant is promised, so every experiment holds both variants to the same
// tolerances (experiments/README.md, "The SLO", says why each number).
// A probe that leaves out its min or max gets the SLO's; one that departs
// from it must say why (the probe's `why`).
type SLO struct {
	// Success: the share of requests answered as expected (2xx; a 4xx only
	// for a request made invalid on purpose).
	Success float64
	// P99: the exact client p99 latency (the load generator's).
	P99 time.Duration
	// Freshness: p99 time from a rating's acceptance to its visibility.
	Freshness time.Duration
	// ConsumerLag and ViewGap: records not durably consumed, acknowledged
	// ratings not yet visible.
	ConsumerLag int64
	ViewGap     int64
}

// LabSLO is the objective every shipped experiment checks.
var LabSLO = SLO{
	Success: 0.99,
	// The interactive budget of a page view: the shipped scenarios' own
	// k6 threshold family (p99 ≤ 1 s).
	P99: time.Second,
	// The rating form re-reads the movie 10 times, 300 ms apart: a rating
	// not visible within 3 s looks lost to the person who gave it.
	Freshness: 3 * time.Second,
	// At the shipped 50 requests/s these are a few seconds of ratings;
	// they are counts, so they do not scale with --rate.
	ConsumerLag: 500,
	ViewGap:     200,
}

// Tolerance is the SLO's bound for a probe kind, as written in a file
// ("" when the SLO says nothing about it).
func (s SLO) Tolerance(probe string) string {
	switch probe {
	case "success_rate", "read_success_rate": // reads are requests too: the same objective
		return strconv.FormatFloat(s.Success, 'g', -1, 64)
	case "p99_latency", "read_p99_latency":
		return s.P99.String()
	case "freshness":
		return s.Freshness.String()
	case "consumer_lag":
		return strconv.FormatInt(s.ConsumerLag, 10)
	case "view_gap":
		return strconv.FormatInt(s.ViewGap, 10)
	case "lost_writes", "duplicates", "phantoms":
		return "0"
	}
	return ""
}

func (s SLO) String() string {
	return fmt.Sprintf("success ≥ %g %%, exact p99 ≤ %s, freshness ≤ %s, consumer lag ≤ %d, view gap ≤ %d; nothing lost, doubled or phantom",
		s.Success*100, s.P99, s.Freshness, s.ConsumerLag, s.ViewGap)
}
