package labtest

import (
	"testing"

	"github.com/ratingslab/lab/lab/layout"
)

// Blocks reserved at once never repeat, even though each pick starts at a
// random block, and each lies below the ephemeral range; a block is handed
// out again once its test has ended.
func TestFreePortBaseReservesEachBlockOnce(t *testing.T) {
	seen := map[int]bool{}
	t.Run("reserved together", func(t *testing.T) {
		for range 20 {
			base := FreePortBase(t)
			if seen[base] {
				t.Fatalf("block %d handed out twice", base)
			}
			if base < layout.TestPortBase(0) || base+layout.PortBlock > 32768 {
				t.Fatalf("block %d-%d leaves the test range", base, base+layout.PortBlock-1)
			}
			seen[base] = true
		}
	})
	// Other test processes may take a released block at once; not all of them.
	dir := portLockDir()
	released := 0
	for base := range seen {
		if f, ok := lockBlock(dir, base); ok {
			f.Close()
			released++
		}
	}
	if released == 0 {
		t.Fatal("no block could be taken again after the test that held it ended")
	}
}
