package loadtests

import (
	"os/exec"
	"testing"
)

// TestK6ScriptsTypeCheck runs typecheck.sh: the k6 scripts type-check
// against @types/k6, the deliberately broken fixture does not, and the JS
// request generator matches lab/load's. It needs node and npm (the first run
// installs the pinned packages from package-lock.json).
func TestK6ScriptsTypeCheck(t *testing.T) {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed; run loadtests/typecheck.sh where it is", tool)
		}
	}
	out, err := exec.Command("./typecheck.sh").CombinedOutput()
	if err != nil {
		t.Fatalf("typecheck.sh: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

func TestScenariosAreEmbedded(t *testing.T) {
	for _, name := range []string{"smoke.json", "steady.json", "ramp.json", "spike.json"} {
		if _, err := Scenarios().Open(name); err != nil {
			t.Errorf("scenario %s is not embedded: %v", name, err)
		}
	}
}
