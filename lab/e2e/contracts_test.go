package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/journal"
	"github.com/ratingslab/lab/lab/labtest"
)

// schemaChangeExperiment is the shipped schema-change experiments in one
// short run: a compatible change, an incompatible one under BACKWARD
// (refused), then one with the check off (accepted, then undecodable).
// The compatible change comes first: once the string-typed schema is the
// subject's latest version, the registry checks later changes against it.
const schemaChangeExperiment = `
title: schema change, short
variants: [rpc, stream]
load: {scenario: steady, rate: 40, duration: 35s}
steady_state:
  warmup: 3s
  recovery: 5s
  probes:
    - probe: success_rate
      min: 0.99
    - probe: lost_writes
method:
  - fault: schema-change
    at: 5s
    for: 5s
    params: {change: v2-add-optional}
  - fault: schema-change
    at: 12s
    for: 5s
    params: {change: v2-rename-field}
  - fault: registry-compat-none
    at: 19s
    for: 8s
  - fault: schema-change
    at: 20s
    for: 5s
    params: {change: v2-change-type}
drain: 8s
`

// The schema-change experiment on both variants, end to end on an Avro
// lab: the registry's decisions are on the timeline; a refused schema
// fails produces (nothing written), an accepted incompatible one is
// acknowledged and dead-lettered as incompatible-schema (the lost writes),
// a compatible one changes nothing for the log; the RPC variant fails on
// every change, from the first call.
func TestSchemaChangeExperiment(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	l := labtest.Start(t, "--no-prometheus", "--format", "avro")
	file := filepath.Join(t.TempDir(), "schema-change.yaml")
	if err := os.WriteFile(file, []byte(schemaChangeExperiment), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := l.Run("chaos", "run", file)
	m := regexp.MustCompile(`Journal: (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no journal path in the output:\n%s", out)
	}
	j, err := journal.Read(m[1])
	if err != nil {
		t.Fatal(err)
	}
	if j.Settings["format"] != "avro" {
		t.Errorf("journal settings %v: want format=avro", j.Settings)
	}

	outcome := map[string]string{} // step/variant → outcome
	windows := map[string][2]time.Time{}
	for _, f := range j.Faults {
		outcome[f.ID+"/"+f.Variant] = f.Outcome
		from, to, _ := f.Window(j.Ended)
		windows[f.ID+"/"+f.Variant] = [2]time.Time{from, to}
	}
	for key, want := range map[string]string{
		"m1/stream": "accepted its schema", "m2/stream": "refused its schema", "m4/stream": "accepted its schema",
		"m3/stream": "compatibility set to NONE", "m1/rpc": "no registry decides",
	} {
		if !strings.Contains(outcome[key], want) {
			t.Errorf("outcome of %s: %q, want it to say %q", key, outcome[key], want)
		}
	}
	if !strings.Contains(outcome["m2/stream"], "409") {
		t.Errorf("the refusal should carry the registry's 409: %q", outcome["m2/stream"])
	}

	// Client errors per fault window and variant (one sample a second).
	errorsIn := func(v, fault string) float64 {
		w := windows[fault+"/"+v]
		var sum float64
		for _, s := range j.Samples {
			if s.Variant == v && s.At.After(w[0].Add(time.Second)) && !s.At.After(w[1]) {
				sum += s.Values[journal.SeriesClientErrorRPS]
			}
		}
		return sum
	}
	for _, fault := range []string{"m1", "m2", "m4"} {
		if errorsIn("rpc", fault) == 0 {
			t.Errorf("rpc: no client errors during %s: ratings-rpc's closed contract should refuse every change", fault)
		}
	}
	if errorsIn("stream", "m2") == 0 {
		t.Error("stream: no client errors while the registry refused the producer's schema")
	}
	if n := errorsIn("stream", "m1") + errorsIn("stream", "m4"); n != 0 {
		t.Errorf("stream: %v client errors while the registry accepted the schemas; produces should succeed", n)
	}

	var lost int64
	for _, a := range j.Audit {
		if a.Variant == "stream" && a.Source == "store" {
			lost = a.Lost
		}
		if a.Variant == "rpc" && a.Lost != 0 {
			t.Errorf("rpc lost %d acknowledged ratings: a refused call is never acknowledged", a.Lost)
		}
	}
	dlq := run(t, "kcat", "-C", "-b", l.Ports.Broker(), "-t", "ratings-dlq", "-o", "beginning", "-e", "-q", "-f", "%h\n")
	incompatible := int64(strings.Count(dlq, "dlq-reason=incompatible-schema"))
	if incompatible == 0 || incompatible != int64(strings.Count(dlq, "dlq-reason=")) {
		t.Errorf("DLQ: %d incompatible-schema records of %d; want every dead letter to be one", incompatible, strings.Count(dlq, "dlq-reason="))
	}
	if lost != incompatible {
		t.Errorf("stream lost %d acknowledged ratings, the DLQ holds %d incompatible-schema records: they should be the same ones", lost, incompatible)
	}
	if j.Verdict["rpc"] || j.Verdict["stream"] {
		t.Errorf("verdict %v: neither variant survives these changes unharmed", j.Verdict)
	}
}

// Bad contract switches are refused before anything starts, naming the flag.
func TestContractFlagsRefuseBadInput(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	t.Parallel()
	l := labtest.New(t)
	jsonLab := t.TempDir()
	if err := os.MkdirAll(filepath.Join(jsonLab, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(jsonLab, "data", "format"), []byte("json\n"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown format", []string{"up", "--format", "xml"}, `--format "xml": want json or avro`},
		{"unknown registry", []string{"up", "--registry", "confluent"}, `--registry "confluent"`},
		{"registry URL not http", []string{"up", "--registry-url", "ftp://host/x"}, "--registry-url"},
		{"two registries", []string{"up", "--registry", "apicurio", "--registry-url", "http://127.0.0.1:1"}, "give one"},
		{"unknown level", []string{"up", "--compatibility", "SIDEWAYS"}, "--compatibility"},
		{"avro without a registry", []string{"serve", "webserver-stream", "--data", t.TempDir(), "--format", "avro"}, "--registry URL is required"},
		{"format switch over a JSON log", []string{"--dir", jsonLab, "up", "--format", "avro"}, "holds json events"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := l.Run(tc.args...)
			if err == nil || !strings.Contains(out, tc.want) {
				t.Fatalf("lab %v: err %v, want an error containing %q:\n%s", tc.args, err, tc.want, out)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(jsonLab, "lab.json")); err == nil {
		t.Error("a refused lab up left a state file behind")
	}
}

// --registry-url: the lab uses a registry it did not start (here a
// standalone embedded one): no schema-registry part, the schemas land there.
func TestExternalRegistryURL(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	t.Parallel()
	l := labtest.New(t)
	addr := fmt.Sprintf("127.0.0.1:%d", labtest.FreePortBase(t))
	reg := exec.Command(l.Bin, "serve", "schema-registry", "--listen", addr, "--data", t.TempDir())
	if err := reg.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Process.Kill(); reg.Wait() })
	labtest.Eventually(t, 10*time.Second, "the external registry", func() error {
		_, err := http.Get("http://" + addr + "/healthz")
		return err
	})
	l.MustRun("up", "--no-prometheus", "--format", "avro", "--registry-url", "http://"+addr)
	t.Cleanup(func() { l.Run("down") })
	for _, p := range l.Status(t) {
		if p.Name == "schema-registry" {
			t.Errorf("a schema-registry part runs beside --registry-url")
		}
	}
	base := "http://" + l.Ports.WebserverStream()
	e := newExpected()
	if code := postStream(t, base, e, 4, 55, "external-1"); code != http.StatusAccepted {
		t.Fatalf("POST: %d", code)
	}
	labtest.Eventually(t, 15*time.Second, "the rating through the external registry", func() error { return e.converged(t, base) })
	var subjects []string
	if code, err := labtest.HTTPJSON(http.MethodGet, "http://"+addr+"/subjects", nil, &subjects); err != nil || code != 200 || len(subjects) != 3 {
		t.Fatalf("the external registry's subjects: %d %v %v", code, err, subjects)
	}
}
