package labtest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ratingslab/lab/lab/layout"
)

// FreePortBase reserves a test port block (layout.TestPortBase, below the
// ephemeral range) for the rest of the test and returns its base. The
// reservation is an exclusive flock on a file named after the block, so
// parallel tests in one process and test processes running side by side
// (go test -p, two engineers' runs) never get the same block; the kernel
// drops it when the test ends or its process dies. A reserved block is also
// checked free port by port, for programs that do not take the lock.
func FreePortBase(t testing.TB) int {
	t.Helper()
	dir := portLockDir()
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatalf("port block locks: %v", err)
	}
	first := rand.IntN(layout.TestPortBases)
	for i := range layout.TestPortBases {
		base := layout.TestPortBase((first + i) % layout.TestPortBases)
		lock, ok := lockBlock(dir, base)
		if !ok {
			continue
		}
		if !blockFree(base) {
			lock.Close()
			continue
		}
		t.Cleanup(func() { lock.Close() })
		return base
	}
	t.Fatalf("no free port block among the %d test blocks from %d", layout.TestPortBases, layout.TestPortBase(0))
	return 0
}

// portLockDir holds one lock file per test port block, shared by every test
// process on the machine.
func portLockDir() string { return filepath.Join(os.TempDir(), "ratingslab-test-ports") }

// lockBlock takes the block's lock without waiting; closing the file drops it.
func lockBlock(dir string, base int) (*os.File, bool) {
	name := filepath.Join(dir, fmt.Sprintf("%d.lock", base))
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		if f, err = os.Open(name); err != nil { // another user's lock file
			return nil, false
		}
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	return f, true
}

// blockFree reports whether every port of the block can be listened on now.
func blockFree(base int) bool {
	for i := range layout.PortBlock {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
		if err != nil {
			return false
		}
		ln.Close()
	}
	return true
}
