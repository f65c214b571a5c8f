package machinecpu

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratingslab/lab/services/lib/metricname"
)

// userHZ is the unit of /proc/stat's times: USER_HZ, 100 ticks per second
// on every Linux architecture (the kernel scales its own HZ to it for
// userspace; Prometheus's procfs assumes the same).
const userHZ = 100

// collector exports the machine's CPU time by mode, read afresh at each
// scrape: what node_exporter's node_cpu_seconds_total says, summed over
// the CPUs, for a lab that runs no node exporter.
type collector struct{ desc *prometheus.Desc }

// NewCollector returns the collector of lab_machine_cpu_seconds_total{mode}.
// A scrape on a machine without /proc/stat carries no such series.
func NewCollector() prometheus.Collector {
	return collector{desc: prometheus.NewDesc(metricname.MachineCPUSecondsTotal,
		"CPU time of all the machine's CPUs together, by mode (user, nice, system, idle, iowait, irq, softirq, steal), "+
			"from /proc/stat. Busy is every mode but idle and iowait; its rate over the rate of all modes is the share of the machine in use.",
		[]string{"mode"}, nil)}
}

func (c collector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c collector) Collect(ch chan<- prometheus.Metric) {
	t, err := Read()
	if err != nil {
		return
	}
	for i, mode := range Modes {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(t.ByMode[i])/userHZ, mode)
	}
}
