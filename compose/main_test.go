package compose

import (
	"os"
	"testing"

	"github.com/ratingslab/lab/lab/labtest"
)

// TestMain removes the lab binaries the tests built once they are done.
func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }
