package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/labtest"
	"github.com/ratingslab/lab/lab/parts"
	"github.com/ratingslab/lab/lab/replay"
)

// avroRecord is one line of testdata/avrocat.py.
type avroRecord struct {
	SchemaID int            `json:"schema_id"`
	Value    map[string]any `json:"value"`
}

// readAvro reads a whole topic with kcat (librdkafka) and decodes it with
// Apache Avro's Python implementation through the registry's REST API:
// what `kcat -s value=avro -r URL` does with libserdes, which Debian's
// kcat is built without.
func readAvro(t *testing.T, broker, registry, topic string) []avroRecord {
	t.Helper()
	for _, tool := range []string{"kcat", "/usr/bin/python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (.ci/run installs kcat and python3-avro)", tool)
		}
	}
	if exec.Command("/usr/bin/python3", "-c", "import avro.io").Run() != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3-avro is required under CI")
		}
		t.Skip("Debian's python3-avro is not installed")
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "testdata", "avrocat.py")
	cmd := fmt.Sprintf("kcat -C -b %s -t %s -o beginning -e -q -f '%%R%%s' | /usr/bin/python3 %s %s", broker, topic, script, registry)
	out, err := exec.Command("bash", "-o", "pipefail", "-c", cmd).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	var recs []avroRecord
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		var r avroRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("avrocat line %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// The log variant in Avro, end to end on the embedded registry: every part
// writes and reads the Confluent wire format; an independent Avro reader
// (kcat + Apache Avro) decodes all three topics through the registry;
// undecodable records go to the DLQ with their reason while processing
// goes on; a registry outage does not stop ratings whose schema ids are
// cached; a rebuild from the Avro log proves the state equal.
func TestAvroEndToEnd(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	t.Parallel()
	l := labtest.Start(t, "--no-prometheus", "--format", "avro")
	base := "http://" + l.Ports.WebserverStream()
	registry := "http://" + l.Ports.Registry()
	e := newExpected()
	for i, tenths := range []int64{70, 85, 100} {
		if code := postStream(t, base, e, 5, tenths, fmt.Sprintf("avro-%d", i)); code != http.StatusAccepted {
			t.Fatalf("POST: status %d, want 202", code)
		}
	}
	labtest.Eventually(t, 15*time.Second, "the view to show the Avro ratings", func() error { return e.converged(t, base) })

	var subjects []string
	if code, err := labtest.HTTPJSON(http.MethodGet, registry+"/subjects", nil, &subjects); err != nil || code != 200 || len(subjects) != 3 {
		t.Fatalf("registry subjects: %d %v %v; want movies-value, rated-movies-value, ratings-value", code, err, subjects)
	}

	broker := l.Ports.Broker()
	ratings := readAvro(t, broker, registry, "ratings")
	if len(ratings) != 3 || ratings[0].Value["request_id"] != "avro-0" || ratings[2].Value["rating"] != 10.0 {
		t.Fatalf("ratings as Apache Avro reads them: %+v", ratings)
	}
	if movies := readAvro(t, broker, registry, "movies"); len(movies) < 180 || movies[0].Value["title"] == "" {
		t.Fatalf("movies: %d records, first %+v", len(movies), movies[0])
	}
	var found bool
	for _, r := range readAvro(t, broker, registry, "rated-movies") {
		if r.Value["movie_id"] == 5.0 && r.Value["count"] == 3.0 && r.Value["sum_tenths"] == 255.0 {
			found = true
		}
	}
	if !found {
		t.Fatal("rated-movies has no record for movie 5 with count 3 and sum 25.5")
	}

	// Undecodable records: DLQ with the reason, never a crash.
	for _, kind := range []string{"wrong-magic-byte", "unknown-schema-id", "truncated-body"} {
		l.MustRun("chaos", "inject", "poison", "--target", "ratings", "--kind", kind, "--count", "2")
	}
	if code := postStream(t, base, e, 6, 60, "avro-after-poison"); code != http.StatusAccepted {
		t.Fatalf("POST after poison: %d", code)
	}
	labtest.Eventually(t, 15*time.Second, "the rating after the poison counted", func() error { return e.converged(t, base) })
	checkDLQ := func() {
		t.Helper()
		dlq := run(t, "kcat", "-C", "-b", broker, "-t", "ratings-dlq", "-o", "beginning", "-e", "-q", "-f", "%h\n")
		for _, reason := range []string{"wrong-magic-byte", "unknown-schema-id", "truncated-body"} {
			if n := strings.Count(dlq, "dlq-reason="+reason); n != 2 {
				t.Errorf("DLQ: %d records with reason %s, want 2:\n%s", n, reason, dlq)
			}
		}
		if n := strings.Count(dlq, "dlq-reason="); n != 6 {
			t.Errorf("DLQ: %d records, want the 6 poison ones:\n%s", n, dlq)
		}
	}
	checkDLQ()
	l.WaitPart("ratings-stream", "healthy", 10*time.Second)

	// The registry down: producers and consumers use their cached ids.
	l.Action(parts.RegistryPart, "stop")
	if code := postStream(t, base, e, 7, 90, "avro-registry-down"); code != http.StatusAccepted {
		t.Fatalf("POST with the registry down: %d (cached ids need no registry)", code)
	}
	labtest.Eventually(t, 15*time.Second, "a rating counted with the registry down", func() error { return e.converged(t, base) })
	l.Action(parts.RegistryPart, "start")
	l.WaitPart(parts.RegistryPart, "healthy", 20*time.Second)

	// A schema id the consumer has not seen while the registry is away: the
	// record waits (retried), it is not dead-lettered; once the registry is
	// back it is counted.
	l.MustRun("chaos", "inject", "contract_change", "--target", "webserver-stream", "--change", "v2-add-optional")
	l.Action(parts.RegistryPart, "stop")
	if code := postStream(t, base, e, 8, 30, "avro-new-id"); code != http.StatusAccepted {
		t.Fatalf("POST with a cached new id: %d", code)
	}
	time.Sleep(3 * time.Second) // long enough for ratings-stream to try, and retry
	if err := e.converged(t, base); err == nil {
		t.Fatal("a record whose schema the consumer could not look up was counted")
	}
	l.Action(parts.RegistryPart, "start")
	labtest.Eventually(t, 30*time.Second, "the new-id rating counted once the registry is back", func() error { return e.converged(t, base) })
	l.MustRun("chaos", "heal", "--all")

	checkDLQ()

	var res replay.RebuildResult
	out := l.MustRun("replay", "rebuild", "ratings-stream", "--json", "--quiet")
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &res); err != nil || !res.Table.OK() || res.Events < 4 {
		t.Fatalf("rebuild from the Avro log: %v %+v\n%s", err, res.Table, out)
	}

	// The other replay tools read the Avro log too: traffic re-drive sends
	// the six countable ratings (the poison ones are skipped), and a fork
	// counts what the live processor counted.
	out = l.MustRun("replay", "traffic", "--from", "-10m", "--to", "now", "--target", "rpc", "--speed", "max")
	if !strings.Contains(out, "6 acknowledged") {
		t.Errorf("traffic re-drive from the Avro log:\n%s", out)
	}
	out = l.MustRun("replay", "fork", "--name", "avro")
	if !strings.Contains(out, "caught up with the live log") {
		t.Fatalf("fork of the Avro log:\n%s", out)
	}
	fork := "http://" + l.Ports.Fork(0)
	if err := e.converged(t, fork); err != nil {
		t.Errorf("the fork's view: %v", err)
	}
}

// The same log variant on Apicurio Registry (lab up --registry apicurio):
// Avro through a real registry, read back by the independent reader.
func TestAvroOnApicurio(t *testing.T) {
	labtest.SkipUnlessE2E(t)
	if _, err := parts.ApicurioJar(parts.ApicurioHome()); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	l := labtest.Start(t, "--no-prometheus", "--format", "avro", "--registry", "apicurio")
	base := "http://" + l.Ports.WebserverStream()
	e := newExpected()
	for i, tenths := range []int64{40, 95} {
		if code := postStream(t, base, e, 9, tenths, fmt.Sprintf("apicurio-%d", i)); code != http.StatusAccepted {
			t.Fatalf("POST: status %d, want 202", code)
		}
	}
	labtest.Eventually(t, 15*time.Second, "the view to show the ratings", func() error { return e.converged(t, base) })
	registry := "http://" + l.Ports.Registry() + parts.ApicurioPath
	var level map[string]string
	if code, err := labtest.HTTPJSON(http.MethodGet, registry+"/config", nil, &level); err != nil || code != 200 || level["compatibilityLevel"] != "BACKWARD" {
		t.Fatalf("Apicurio's global level: %d %v %v; lab up sets BACKWARD", code, err, level)
	}
	ratings := readAvro(t, l.Ports.Broker(), registry, "ratings")
	if len(ratings) != 2 || ratings[1].Value["request_id"] != "apicurio-1" {
		t.Fatalf("ratings as Apache Avro reads them from Apicurio's ids: %+v", ratings)
	}
}
