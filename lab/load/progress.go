package load

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Progress renders live snapshots. On a terminal it redraws one line per
// variant in place; elsewhere (a log file, CI) it appends lines every
// LogEvery so the output stays readable.
type Progress struct {
	w         io.Writer
	tty       bool
	scheduled uint64
	logEvery  time.Duration

	drawn    int // lines drawn last time (tty)
	lastLog  time.Duration
	prevSent map[string]uint64
	prevAt   time.Duration
}

// NewProgress returns a progress view writing to w; scheduled is the number
// of requests per variant the schedule holds.
func NewProgress(w io.Writer, tty bool, scheduled uint64) *Progress {
	return &Progress{w: w, tty: tty, scheduled: scheduled, logEvery: 5 * time.Second, prevSent: map[string]uint64{}}
}

// Update is a Config.OnProgress.
func (p *Progress) Update(elapsed time.Duration, snaps []Snapshot) {
	interval := (elapsed - p.prevAt).Seconds()
	lines := make([]string, 0, len(snaps)+1)
	lines = append(lines, fmt.Sprintf("%s elapsed", elapsed.Truncate(time.Second)))
	for _, s := range snaps {
		rate := 0.0
		if interval > 0 {
			rate = float64(s.Sent-p.prevSent[s.Variant]) / interval
		}
		p.prevSent[s.Variant] = s.Sent
		lines = append(lines, formatSnapshot(s, p.scheduled, rate))
	}
	p.prevAt = elapsed
	if p.tty {
		var b strings.Builder
		if p.drawn > 0 {
			fmt.Fprintf(&b, "\x1b[%dA", p.drawn) // back to the first line drawn
		}
		for _, l := range lines {
			b.WriteString("\x1b[2K")
			b.WriteString(l)
			b.WriteByte('\n')
		}
		p.drawn = len(lines)
		io.WriteString(p.w, b.String())
		return
	}
	if elapsed-p.lastLog < p.logEvery {
		return
	}
	p.lastLog = elapsed
	io.WriteString(p.w, strings.Join(lines, "\n  ")+"\n")
}

func formatSnapshot(s Snapshot, scheduled uint64, rate float64) string {
	var errs []string
	for _, c := range Causes {
		n := s.Causes[c]
		switch {
		case n > 0 && c == CauseHTTP4xx && s.Unexpected4xx > 0:
			errs = append(errs, fmt.Sprintf("%s %d (%d unexpected)", c, n, s.Unexpected4xx))
		case n > 0:
			errs = append(errs, fmt.Sprintf("%s %d", c, n))
		}
	}
	errText := "none"
	if len(errs) > 0 {
		errText = strings.Join(errs, ", ")
	}
	return fmt.Sprintf("%-8s sent %d/%d  in flight %d  ok %d  errors: %s  p50 %s  p99 %s (last interval %s)  %.1f req/s",
		s.Variant, s.Sent, scheduled, s.InFlight, s.Outcomes[Acknowledged], errText,
		fmtLatency(s.P50), fmtLatency(s.P99), fmtLatency(s.WindowP99), rate)
}

func fmtLatency(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}
