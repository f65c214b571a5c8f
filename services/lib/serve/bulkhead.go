package serve

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/lib/metricname"
)

// Limits bound what one part serves at once: at most MaxInflight public
// requests are handled, up to MaxQueue more wait for a slot (at most
// QueueTimeout), and anything beyond is answered 503 at once. Without
// them a slow dependency makes a part accept work until memory or
// descriptors run out; with them it fills up, and then requests that do
// not need the slow dependency wait too — the cascade a breaker contains.
//
// Defaults are Apache Tomcat's connector defaults, the most common
// servlet-container setting: maxThreads 200, acceptCount 100, and the
// connectionTimeout of 20 s its shipped server.xml sets.
type Limits struct {
	MaxInflight  int
	MaxQueue     int
	QueueTimeout time.Duration
}

// DefaultLimits are Tomcat's defaults (see Limits).
func DefaultLimits() Limits {
	return Limits{MaxInflight: 200, MaxQueue: 100, QueueTimeout: 20 * time.Second}
}

// Validate names the first bad limit by its flag.
func (l Limits) Validate() error {
	switch {
	case l.MaxInflight < 1:
		return fmt.Errorf("--max-inflight must be >= 1, got %d", l.MaxInflight)
	case l.MaxQueue < 0:
		return fmt.Errorf("--max-queue must be >= 0, got %d", l.MaxQueue)
	case l.QueueTimeout <= 0:
		return fmt.Errorf("--queue-timeout must be > 0, got %s", l.QueueTimeout)
	}
	return nil
}

// Flags registers --max-inflight, --max-queue and --queue-timeout with l's
// values as defaults; a bad value is a flag error, before anything starts.
func (l *Limits) Flags(fs *flag.FlagSet) {
	fs.Func("max-inflight", fmt.Sprintf("public requests handled at once (bulkhead), >= 1 (default %d: Tomcat's maxThreads)", l.MaxInflight), intAtLeast(&l.MaxInflight, 1))
	fs.Func("max-queue", fmt.Sprintf("public requests waiting for a slot beyond --max-inflight, >= 0; more are answered 503 at once (default %d: Tomcat's acceptCount)", l.MaxQueue), intAtLeast(&l.MaxQueue, 0))
	fs.Func("queue-timeout", fmt.Sprintf("longest wait for a slot before a 503, > 0 (default %s: Tomcat's shipped connectionTimeout)", l.QueueTimeout), func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("want a duration > 0 such as 20s, got %q", v)
		}
		l.QueueTimeout = d
		return nil
	})
}

func intAtLeast(dst *int, lo int) func(string) error {
	return func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo {
			return fmt.Errorf("want an integer >= %d, got %q", lo, v)
		}
		*dst = n
		return nil
	}
}

// Info is how /healthz and `lab status` show the limits.
func (l Limits) Info() map[string]any {
	return map[string]any{"max_inflight": l.MaxInflight, "max_queue": l.MaxQueue, "queue_timeout": l.QueueTimeout.String()}
}

// bulkhead enforces Limits on the public tree and exposes its use.
type bulkhead struct {
	limits Limits
	slots  chan struct{}
	queue  chan struct{} // a token per waiting request: its capacity is the queue

	inflight, queued          prometheus.Gauge
	inflightLimit, queueLimit prometheus.Gauge
	rejected                  *prometheus.CounterVec
}

func newBulkhead(l Limits, reg prometheus.Registerer) *bulkhead {
	b := &bulkhead{}
	b.inflight = prometheus.NewGauge(prometheus.GaugeOpts{Name: metricname.HTTPInflightRequests, Help: "Public requests being handled now (bulkhead slots in use)."})
	b.queued = prometheus.NewGauge(prometheus.GaugeOpts{Name: metricname.HTTPQueuedRequests, Help: "Public requests waiting for a bulkhead slot."})
	b.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricname.HTTPRejectedRequestsTotal, Help: "Public requests answered 503 by the bulkhead, by reason: queue_full, queue_timeout."}, []string{"reason"})
	b.inflightLimit = prometheus.NewGauge(prometheus.GaugeOpts{Name: metricname.HTTPInflightLimit, Help: "Bulkhead size: public requests handled at once (--max-inflight)."})
	b.queueLimit = prometheus.NewGauge(prometheus.GaugeOpts{Name: metricname.HTTPQueueLimit, Help: "Bulkhead queue size (--max-queue)."})
	for _, r := range []string{"queue_full", "queue_timeout"} {
		b.rejected.WithLabelValues(r)
	}
	reg.MustRegister(b.inflight, b.queued, b.rejected, b.inflightLimit, b.queueLimit)
	b.resize(l)
	return b
}

// resize replaces the limits; only before serving (not safe with requests in flight).
func (b *bulkhead) resize(l Limits) {
	b.limits = l
	b.slots = make(chan struct{}, l.MaxInflight)
	b.queue = make(chan struct{}, l.MaxQueue)
	b.inflightLimit.Set(float64(l.MaxInflight))
	b.queueLimit.Set(float64(l.MaxQueue))
}

// Overloaded is the header of a 503 a part's own bulkhead answered: the part
// is full, not its dependency.
const Overloaded = "Lab-Overloaded"

// acquire takes a slot, waiting in the queue when there is room; the reason
// says why not ("" on success).
func (b *bulkhead) acquire(ctx context.Context) string {
	select {
	case b.slots <- struct{}{}:
		return ""
	default:
	}
	select {
	case b.queue <- struct{}{}:
	default:
		return "queue_full"
	}
	b.queued.Inc()
	defer func() { <-b.queue; b.queued.Dec() }()
	t := time.NewTimer(b.limits.QueueTimeout)
	defer t.Stop()
	select {
	case b.slots <- struct{}{}:
		return ""
	case <-t.C:
		return "queue_timeout"
	case <-ctx.Done():
		return "queue_timeout" // the client left while waiting
	}
}

func (b *bulkhead) middleware(resolver routeResolver, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reason := b.acquire(r.Context()); reason != "" {
			b.rejected.WithLabelValues(reason).Inc()
			if resolver != nil {
				_, r.Pattern = resolver.Handler(r) // counted under the route it was for
			}
			w.Header().Set(Overloaded, reason)
			w.Header().Set("Retry-After", "1")
			msg := fmt.Sprintf("overloaded: %d requests in flight and the queue of %d is full", b.limits.MaxInflight, b.limits.MaxQueue)
			if reason == "queue_timeout" {
				msg = fmt.Sprintf("overloaded: no free slot of %d within %s", b.limits.MaxInflight, b.limits.QueueTimeout)
			}
			WriteJSON(w, http.StatusServiceUnavailable, map[string]any{"error": msg, "retry_after": 1})
			return
		}
		b.inflight.Inc()
		defer func() { b.inflight.Dec(); <-b.slots }()
		next.ServeHTTP(w, r)
	})
}
