package stream

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/lib/metricname"
	"github.com/ratingslab/lab/services/model"
)

// metrics are the processor's own metrics; Kafka client metrics (consumed,
// produced, lag) come from kafkaio.
type metrics struct {
	batch prometheus.Histogram
	dlq   *prometheus.CounterVec

	// Taking partitions over (restore.go).
	restore          *prometheus.HistogramVec // by where the state came from
	restoreRecords   *prometheus.CounterVec   // changelog records read, ratings replayed
	changelogWritten prometheus.Counter
	changelogTxns    prometheus.Counter
	// restoreStart: changelog records read at restores, by whether the
	// partition started from a standby copy or the changelog's start.
	restoreStart *prometheus.CounterVec

	// Standby replicas (standby.go).
	standbyRecords    prometheus.Counter
	standbyLag        prometheus.Gauge
	standbyPartitions prometheus.Gauge
}

// Where a taken-over partition's state came from (the "from" label).
const (
	fromChangelog = "changelog" // restored from the changelog topic
	fromLocal     = "local"     // this instance's own database
	fromStart     = "start"     // nothing: the partition is replayed from the start of the log
	fromStandby   = "standby"   // a standby copy, completed with the changelog written since
)

// Where a restore's changelog reading started (the "start" label).
const (
	startStandby = "standby" // after a standby copy's position: the tail
	startScratch = "scratch" // the changelog partition's first offset
)

func newMetrics(reg prometheus.Registerer) *metrics {
	batch := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: metricname.StreamBatchDurationSeconds,
		Help: "Time to process one batch of ratings: decode, aggregate, dead-letter, and commit state with offsets.",
		// 0.5ms .. 10s: a small batch commits in about a millisecond; a
		// throttled or faulted one takes seconds.
		Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
	})
	m := &metrics{
		batch: batch,
		dlq: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricname.DLQMessagesTotal,
			Help: "Ratings events sent to the dead-letter topic, by reason.",
		}, []string{"reason"}),
	}
	// Every reason is exported from the start, at 0: a dashboard shows
	// "no poison yet" rather than "no data".
	for _, r := range model.DLQReasons {
		m.dlq.WithLabelValues(r)
	}
	m.restore = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: metricname.StreamRestoreDurationSeconds,
		Help: "Time from a partition's assignment until its state includes every rating that was in the log at the assignment (restore from the changelog or the database, then the tail of ratings), by where the state came from: changelog, local (this instance's database), start (replayed from the start of the log).",
		// 1ms .. 2 min, 4 buckets per doubling.
		Buckets: prometheus.ExponentialBuckets(0.001, 1.189207115, 69),
	}, []string{"from"})
	m.restoreRecords = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricname.StreamRestoreRecordsTotal,
		Help: "Records read to restore taken-over partitions: changelog (records of the changelog and the request-id topic) and ratings (the ratings replayed to catch up).",
	}, []string{"topic"})
	m.changelogWritten = prometheus.NewCounter(prometheus.CounterOpts{
		Name: metricname.StreamChangelogRecordsTotal,
		Help: "Records written to the changelog and the request-id topic by the effectively-once processor (--restore=changelog).",
	})
	m.changelogTxns = prometheus.NewCounter(prometheus.CounterOpts{
		Name: metricname.StreamChangelogTransactionsTotal,
		Help: "Changelog transactions committed by the effectively-once processor (--restore=changelog): one per partition at most every --changelog-interval, carrying the batches committed since.",
	})
	m.restoreStart = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricname.StreamRestoreChangelogRecordsTotal,
		Help: "Records of the changelog and the request-id topic read by restores (every assigned partition's, at every assignment), by where the reading started: standby (after a standby replica's copy: only the tail) or scratch (the partitions' first offsets).",
	}, []string{"start"})
	m.standbyRecords = prometheus.NewCounter(prometheus.CounterOpts{
		Name: metricname.StreamStandbyRecordsTotal,
		Help: "Records of the changelog and the request-id topic applied to standby replicas (warm copies of partitions this instance does not own; --standby-replicas).",
	})
	m.standbyLag = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: metricname.StreamStandbyLagRecords,
		Help: "Records of the changelog and the request-id topic committed but not yet in this instance's standby replicas, summed over them (refreshed every second).",
	})
	m.standbyPartitions = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: metricname.StreamStandbyPartitions,
		Help: "Partitions this instance keeps a standby replica of.",
	})
	for _, s := range []string{startStandby, startScratch} {
		m.restoreStart.WithLabelValues(s)
	}
	for _, f := range []string{fromChangelog, fromLocal, fromStart, fromStandby} {
		m.restore.WithLabelValues(f)
	}
	for _, t := range []string{"changelog", "ratings"} {
		m.restoreRecords.WithLabelValues(t)
	}
	if reg != nil {
		reg.MustRegister(batch, m.dlq, m.restore, m.restoreRecords, m.changelogWritten, m.changelogTxns, m.restoreStart,
			m.standbyRecords, m.standbyLag, m.standbyPartitions)
	}
	return m
}
