package servetest

import (
	"syscall"
	"testing"
	"time"
)

// ReportCPU makes benchmark b report the process's CPU time (user and
// system, every goroutine) per operation as "cpu-ns/op": on a machine
// shared with other work, CPU time per operation moves far less than
// wall time does. Call it after the setup, just before the timed loop.
func ReportCPU(b *testing.B) {
	start := processCPU()
	b.Cleanup(func() {
		if b.N > 0 {
			b.ReportMetric(float64((processCPU()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	})
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
