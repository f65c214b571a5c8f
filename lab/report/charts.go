package report

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/ratingslab/lab/lab/journal"
)

// chartDPI and the chart size give 640×230 px images: two fit side by side
// on a 1400 px page.
const (
	chartDPI    = 96
	chartWidth  = 640
	chartHeight = 230
)

// line is one series drawn in a chart.
type line struct {
	Series string
	Label  string
	Color  color.RGBA
	Dashed bool
	// Offset is added to every point (breakers drawn side by side).
	Offset float64
}

// metric is one row of charts: the same metric for every panel.
type metric struct {
	ID    string // file-name safe
	Title string
	Unit  string
	Lines []line
	// Scale turns a stored value into the plotted one (seconds → ms).
	Scale float64
	// Log draws the y axis logarithmically (latencies).
	Log bool
	// Fixed y range when Max > Min.
	Min, Max float64
	// Steps label values with words (breaker states) and draw steps.
	Steps []plot.Tick
	// Dynamic, when set, finds the lines in the panel's samples (one per
	// breaker, by name) instead of Lines.
	Dynamic func(p panel) []line
	// Ticks, when set, are the only y ticks (the fixed range leaves room
	// above them for the legend).
	Ticks []float64
}

var (
	blue   = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	orange = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
	green  = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
	red    = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	purple = color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff}
	grey   = color.RGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff}
	// faultShade marks the time a fault was active.
	faultShade = color.RGBA{R: 0xff, G: 0xd6, B: 0xd6, A: 0xff}
)

// metrics are the chart rows of a report, in order.
var metrics = []metric{
	{ID: "rate", Title: "Request rate", Unit: "requests/s", Scale: 1, Lines: []line{
		{Series: journal.SeriesClientRPS, Label: "answered", Color: blue},
		{Series: journal.SeriesClientErrorRPS, Label: "not as expected", Color: red},
		{Series: journal.SeriesServerRPS, Label: "server", Color: grey, Dashed: true},
	}},
	{ID: "success", Title: "Success rate (answers as expected)", Unit: "%", Scale: 100, Min: 0, Max: 130, Ticks: []float64{0, 25, 50, 75, 100}, Lines: []line{
		{Series: journal.SeriesClientSuccessRatio, Label: "all", Color: green},
		{Series: journal.SeriesClientReadSuccess, Label: "reads", Color: blue, Dashed: true},
		{Series: journal.SeriesClientWriteSuccess, Label: "writes", Color: orange, Dashed: true},
	}},
	{ID: "latency", Title: "Client latency (from every request)", Unit: "ms", Scale: 1000, Log: true, Lines: []line{
		{Series: journal.SeriesClientP50, Label: "p50", Color: blue},
		{Series: journal.SeriesClientP99, Label: "p99", Color: orange},
	}},
	{ID: "inflight", Title: "Requests in flight", Unit: "requests", Scale: 1, Lines: []line{
		{Series: journal.SeriesClientInFlight, Label: "in flight", Color: blue},
	}},
	{ID: "breaker", Title: "Circuit breakers", Scale: 1, Min: -1.4, Max: 3.2, Steps: breakerSteps, Dynamic: breakerLines},
	{ID: "pools", Title: "Connection pools: share of each edge's pool in use", Unit: "%", Scale: 100, Min: 0, Max: 130, Ticks: []float64{0, 25, 50, 75, 100},
		Dynamic: seriesLines(journal.SeriesPoolUtilisation)},
	{ID: "calls", Title: "Calls per second: attempts per edge (retries included), requests served per part (dashed)", Unit: "calls/s", Scale: 1,
		Dynamic: seriesLines(journal.SeriesEdgeCallsRPS, journal.SeriesPartRPS)},
	{ID: "bulkheads", Title: "Bulkheads: requests in flight per part, queued (dashed)", Unit: "requests", Scale: 1,
		Dynamic: seriesLines(journal.SeriesPartInFlight, journal.SeriesPartQueued)},
	{ID: "lag", Title: "Consumer lag (measured from outside; a gap is unknown)", Unit: "records", Scale: 1, Lines: []line{
		{Series: journal.SeriesConsumerLag, Label: "lag", Color: orange},
	}},
	{ID: "restore", Title: "Partition restore after a rebalance (latest; mean per taken-over partition)", Unit: "s", Scale: 1, Lines: []line{
		{Series: journal.SeriesRestoreSeconds, Label: "restore", Color: blue},
	}},
	{ID: "restore-records", Title: "Changelog records read by restores (since the start): on top of warm standby copies, from scratch", Unit: "records", Scale: 1, Lines: []line{
		{Series: journal.SeriesRestoreRecordsWarm, Label: "from standby copies", Color: green},
		{Series: journal.SeriesRestoreRecordsScratch, Label: "from scratch", Color: orange},
	}},
	{ID: "dlq", Title: "Dead letters (ratings-dlq, since the start)", Unit: "records", Scale: 1, Lines: []line{
		{Series: journal.SeriesDLQRecords, Label: "records", Color: red},
	}},
	{ID: "freshness", Title: "View freshness p99 (≈, server histogram)", Unit: "s", Scale: 1, Lines: []line{
		{Series: journal.SeriesFreshnessP99, Label: "p99", Color: purple},
	}},
	{ID: "view", Title: "View against acknowledged ratings", Unit: "ratings", Scale: 1, Lines: []line{
		{Series: journal.SeriesViewGap, Label: "acknowledged, not yet visible", Color: red},
		{Series: journal.SeriesViewUnacknowledged, Label: "visible, never acknowledged", Color: purple},
	}},
	{ID: "machine", Title: "Machine CPU busy (all cores; every part and the load generator share them)", Unit: "%", Scale: 100, Min: 0, Max: 130, Ticks: []float64{0, 25, 50, 75, 100}, Lines: []line{
		{Series: journal.SeriesMachineCPUBusy, Label: "busy", Color: orange},
	}},
}

// breakerSteps label the breaker states (lab_breaker_state values).
var breakerSteps = []plot.Tick{
	{Value: journal.BreakerDisabled, Label: "disabled"},
	{Value: journal.BreakerClosed, Label: "closed"},
	{Value: journal.BreakerHalfOpen, Label: "half-open"},
	{Value: journal.BreakerOpen, Label: "open"},
}

var palette = []color.RGBA{purple, blue, orange, green, red, grey}

// breakerLines are one line per breaker in the panel's samples, by name.
// Each is lifted a little above the one before so that breakers in the
// same state stay visible side by side.
func breakerLines(p panel) []line {
	seen := map[string]bool{}
	var names []string
	for _, s := range p.Journal.Samples {
		if s.Variant != p.Variant {
			continue
		}
		for name := range s.Values {
			if _, _, ok := journal.ParseBreakerSeries(name); ok && !seen[name] {
				seen[name] = true
				names = append(names, name)
			}
		}
	}
	sort.Strings(names)
	out := make([]line, 0, len(names))
	for i, name := range names {
		part, dep, _ := journal.ParseBreakerSeries(name)
		out = append(out, line{Series: name, Label: part + " → " + dep, Color: palette[i%len(palette)], Offset: 0.08 * float64(i)})
	}
	return out
}

// seriesLines finds, per panel, one line per part or edge of the series
// kinds (journal.PartSeries, journal.EdgeSeries): solid for the first
// kind, dashed for the others. Parts that never did anything (a line of
// zeros) are left out so the lines that matter stay readable.
func seriesLines(kinds ...string) func(p panel) []line {
	return func(p panel) []line {
		seen := map[string]bool{}
		var names []string
		for _, s := range p.Journal.Samples {
			if s.Variant != p.Variant {
				continue
			}
			for name, v := range s.Values {
				kind, _ := journal.ParseSeries(name)
				if v != 0 && !seen[name] && slices.Contains(kinds, kind) {
					seen[name] = true
					names = append(names, name)
				}
			}
		}
		sort.Strings(names)
		out := make([]line, 0, len(names))
		for i, name := range names {
			kind, what := journal.ParseSeries(name)
			label := strings.Replace(what, "/", " → ", 1)
			if kind == journal.SeriesPartQueued {
				label += " queued"
			}
			out = append(out, line{Series: name, Label: label, Color: palette[i%len(palette)], Dashed: kind != kinds[0]})
		}
		return out
	}
}

// linesOf are the metric's lines for a panel.
func (m metric) linesOf(p panel) []line {
	if m.Dynamic != nil {
		return m.Dynamic(p)
	}
	return m.Lines
}

// panel is one column of charts: a variant of a run.
type panel struct {
	Label   string // shown above the column
	Journal *journal.Journal
	Variant string
}

// points returns the plotted points of a series, split where data is
// missing for more than two seconds so a gap shows as a gap.
func (p panel) points(series string, scale float64, log bool) []plotter.XYs {
	var out []plotter.XYs
	var cur plotter.XYs
	var last time.Time
	for _, s := range p.Journal.Samples {
		if s.Variant != p.Variant {
			continue
		}
		v, ok := s.Values[series]
		if !ok {
			if s.IsUnknown(series) && len(cur) > 0 {
				out = append(out, cur) // unknown: a gap, never a stale value
				cur = nil
			}
			continue
		}
		if len(cur) > 0 && s.At.Sub(last) > 2*time.Second+500*time.Millisecond {
			out = append(out, cur)
			cur = nil
		}
		y := v * scale
		if log {
			y = max(y, logFloor)
		}
		cur = append(cur, plotter.XY{X: s.At.Sub(p.Journal.Started).Seconds(), Y: y})
		last = s.At
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// logFloor is the smallest value a log axis shows (0.1 ms).
const logFloor = 0.1

// has reports whether the panel has any data for the metric.
func (p panel) has(m metric) bool {
	for _, l := range m.linesOf(p) {
		if len(p.points(l.Series, 1, false)) > 0 {
			return true
		}
	}
	return false
}

// window is a shaded fault window in seconds since the start.
type window struct {
	From, To float64
	Label    string
}

func (p panel) windows() []window {
	var out []window
	for _, f := range p.Journal.Faults {
		if f.Variant != "" && f.Variant != p.Variant {
			continue
		}
		from, to, ok := f.Window(p.Journal.Ended)
		if !ok {
			continue
		}
		out = append(out, window{From: from.Sub(p.Journal.Started).Seconds(), To: to.Sub(p.Journal.Started).Seconds(), Label: f.ID})
	}
	return out
}

// shade draws fault windows behind the data. It is a plot.Plotter without
// a data range, so it never stretches the axes.
type shade struct{ windows []window }

func (s shade) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	sty := draw.TextStyle{Color: red, Font: sans(7), XAlign: draw.XLeft, YAlign: draw.YTop, Handler: plot.DefaultTextHandler}
	for _, w := range s.windows {
		x0 := max(trX(max(w.From, p.X.Min)), c.Min.X)
		x1 := min(trX(min(w.To, p.X.Max)), c.Max.X)
		if x1 <= x0 {
			continue
		}
		c.FillPolygon(faultShade, []vg.Point{{X: x0, Y: c.Min.Y}, {X: x1, Y: c.Min.Y}, {X: x1, Y: c.Max.Y}, {X: x0, Y: c.Max.Y}})
		c.FillText(sty, vg.Point{X: x0 + 2, Y: c.Max.Y - 2}, w.Label)
	}
}

// yRange is the shared y range of a metric across panels, so that the
// columns compare at a glance.
func yRange(m metric, panels []panel) (lo, hi float64) {
	if m.Max > m.Min {
		return m.Min, m.Max
	}
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, p := range panels {
		for _, l := range m.linesOf(p) {
			for _, seg := range p.points(l.Series, m.Scale, m.Log) {
				for _, pt := range seg {
					lo, hi = min(lo, pt.Y), max(hi, pt.Y)
				}
			}
		}
	}
	if math.IsInf(lo, 1) {
		return 0, 1
	}
	// Headroom above the data keeps the legend (top right) off the lines.
	if m.Log {
		lo = max(lo/1.5, logFloor)
		hi = max(hi, lo*10)
		return lo, hi * math.Pow(hi/lo, 0.35)
	}
	lo = min(lo, 0)
	if hi <= lo {
		hi = lo + 1
	}
	return lo, hi + (hi-lo)*0.35
}

// xMax is the shared x range: the longest run's duration in seconds.
func xMax(panels []panel) float64 {
	x := 1.0
	for _, p := range panels {
		x = max(x, p.Journal.Ended.Sub(p.Journal.Started).Seconds())
		for _, s := range p.Journal.Samples {
			x = max(x, s.At.Sub(p.Journal.Started).Seconds())
		}
	}
	return x
}

// renderChart draws one metric of one panel as a PNG.
func renderChart(m metric, p panel, ylo, yhi, xmax float64) ([]byte, error) {
	pl := plot.New()
	pl.Title.Text = m.Title
	pl.Title.TextStyle.Font = sans(10)
	pl.X.Label.Text = "seconds since start"
	pl.X.Min, pl.X.Max = 0, xmax
	pl.X.Tick.Marker = secondTicks{}
	pl.Y.Min, pl.Y.Max = ylo, yhi
	if m.Unit != "" {
		pl.Y.Label.Text = m.Unit
	}
	for _, a := range []*plot.Axis{&pl.X, &pl.Y} {
		a.Label.TextStyle.Font = sans(8)
		a.Tick.Label.Font = sans(7)
	}
	switch {
	case len(m.Ticks) > 0:
		var ticks []plot.Tick
		for _, v := range m.Ticks {
			ticks = append(ticks, plot.Tick{Value: v, Label: compact(v)})
		}
		pl.Y.Tick.Marker = plot.ConstantTicks(ticks)
	case m.Log:
		pl.Y.Scale = plot.LogScale{}
		pl.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	case len(m.Steps) > 0:
		pl.Y.Tick.Marker = plot.ConstantTicks(m.Steps)
	default:
		pl.Y.Tick.Marker = compactTicks{}
	}
	pl.Add(shade{windows: p.windows()})
	grid := plotter.NewGrid()
	grid.Vertical.Color = color.RGBA{R: 0xe0, G: 0xe0, B: 0xe0, A: 0xff}
	grid.Horizontal.Color = grid.Vertical.Color
	pl.Add(grid)
	pl.Legend.Top = true
	pl.Legend.TextStyle.Font = sans(7)
	for _, l := range m.linesOf(p) {
		segs := p.points(l.Series, m.Scale, m.Log)
		for i, seg := range segs {
			if l.Offset != 0 {
				seg = append(plotter.XYs(nil), seg...)
				for k := range seg {
					seg[k].Y += l.Offset
				}
			}
			ln, err := plotter.NewLine(seg)
			if err != nil {
				return nil, fmt.Errorf("chart %s: %w", m.ID, err)
			}
			ln.Color = l.Color
			ln.Width = vg.Points(1.2)
			if l.Dashed {
				ln.Dashes = []vg.Length{vg.Points(3), vg.Points(2)}
			}
			if len(m.Steps) > 0 {
				ln.StepStyle = plotter.PostStep
			}
			pl.Add(ln)
			if i == 0 {
				pl.Legend.Add(l.Label, ln)
			}
		}
	}
	c := vgimg.NewWith(vgimg.UseWH(vg.Length(chartWidth)*vg.Inch/chartDPI, vg.Length(chartHeight)*vg.Inch/chartDPI), vgimg.UseDPI(chartDPI))
	pl.Draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("chart %s: %w", m.ID, err)
	}
	return buf.Bytes(), nil
}

// compactTicks are gonum's default ticks with short labels (1.5k, 20).
type compactTicks struct{}

func (compactTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = compact(ticks[i].Value)
		}
	}
	return ticks
}

func compact(v float64) string {
	// Tick values come out of float arithmetic (1.2000000000000002);
	// six significant digits are plenty for a label. Adding 0 turns -0
	// into 0.
	if v != 0 {
		mag := math.Pow(10, 5-math.Floor(math.Log10(math.Abs(v))))
		v = math.Round(v*mag) / mag
	}
	v += 0
	switch a := math.Abs(v); {
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case a >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	default:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
}

// sans is the charts' font: Liberation Sans, embedded in gonum/plot, so a
// chart renders the same on every machine.
func sans(points float64) font.Font {
	return font.Font{Typeface: "Liberation", Variant: "Sans", Size: vg.Points(points)}
}

// secondTicks label the time axis in round steps of seconds.
type secondTicks struct{}

func (secondTicks) Ticks(lo, hi float64) []plot.Tick {
	step := 10.0
	for _, s := range []float64{10, 30, 60, 120, 300, 600, 1800, 3600} {
		step = s
		if (hi-lo)/s <= 12 {
			break
		}
	}
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: compact(v)})
		for minor := v + step/2; minor < min(v+step, hi) && minor <= hi; minor += step {
			ticks = append(ticks, plot.Tick{Value: minor})
		}
	}
	return ticks
}
