package kafkatest

import (
	"context"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/ratingslab/lab/services/lib/kafkaio/embedded"
	"github.com/ratingslab/lab/services/lib/servetest"
)

// DurableBroker is the lab's real broker (kafkaio/embedded: kfake with a data
// directory and the lab's topics) running in-process, so that a test can stop
// it and start it again on the same port with the same data — a broker
// restart as clients see it: connections drop, records and offsets survive.
type DurableBroker struct {
	Addr string // host:port, the same across restarts
	Dir  string

	mu        sync.Mutex
	c         *kfake.Cluster
	stopClean func() // ends the broker's log cleaner; before c.Close
}

// StartDurable starts the lab broker on a free loopback port with its data
// in a test directory; it is closed at test end.
func StartDurable(t testing.TB) *DurableBroker {
	t.Helper()
	b := &DurableBroker{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t))), Dir: t.TempDir()}
	b.Start(t)
	t.Cleanup(b.Stop)
	return b
}

// Start starts the broker (again) on Addr with Dir. The port was just
// released by Stop; binding it is retried for a bounded while.
func (b *DurableBroker) Start(t testing.TB) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.c != nil {
		t.Fatal("kafkatest: broker already running")
	}
	servetest.Eventually(t, 10*time.Second, "kafkatest: the broker to start on "+b.Addr, func() error {
		c, err := embedded.Start(b.Addr, b.Dir, false)
		b.c = c
		return err
	})
	// The lab broker's log cleaner, checking every second.
	cleaner, err := embedded.NewCleaner(b.c, b.Addr, b.Dir, 0, nil)
	if err != nil {
		b.c.Close()
		b.c = nil
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { cleaner.Run(ctx, time.Second) })
	b.stopClean = func() { cancel(); wg.Wait() }
}

// Stop closes the broker: every client connection drops and new ones are
// refused until Start.
func (b *DurableBroker) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.c != nil {
		b.stopClean()
		b.c.Close()
		b.c = nil
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Crash stops the broker as kill -9 does: the data directory keeps what
// the broker had written when it died, nothing of what a clean stop saves
// (session state, open transactions). Start brings it back.
func (b *DurableBroker) Crash(t testing.TB) {
	t.Helper()
	died := t.TempDir()
	if err := os.CopyFS(died, os.DirFS(b.Dir)); err != nil {
		t.Fatalf("kafkatest: copy the data as the broker dies: %v", err)
	}
	b.Stop()
	if err := os.RemoveAll(b.Dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(died, b.Dir); err != nil {
		t.Fatal(err)
	}
}
