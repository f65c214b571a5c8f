package journal

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ratingslab/lab/lab/audit"
	"github.com/ratingslab/lab/services/lib/duration"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func sampleJournal() Journal {
	return Journal{
		Version:    CurrentVersion,
		Kind:       KindExperiment,
		Title:      "kill ratings",
		Definition: json.RawMessage(`{"title":"kill ratings"}`),
		Seed:       42,
		Variants:   []string{"rpc", "stream"},
		Settings:   map[string]string{"breakers": "on"},
		Started:    t0,
		Ended:      t0.Add(time.Minute),
		Faults: []FaultEvent{{ID: "f1", Fault: "kill", Variant: "rpc", Targets: []string{"ratings-rpc"},
			PlannedAt: duration.Duration(10 * time.Second), PlannedFor: duration.Duration(20 * time.Second),
			InjectedAt: t0.Add(10 * time.Second), HealedAt: t0.Add(30 * time.Second)}},
		Samples:  []Sample{{At: t0.Add(time.Second), Variant: "rpc", Values: map[string]float64{SeriesClientRPS: 100}}},
		Phases:   []PhaseResult{{Name: PhaseBefore, Variant: "rpc", Probes: []ProbeResult{{Name: "success", Tolerance: ">= 0.99", Observed: "1", OK: true}}, OK: true}},
		Audit:    []audit.Result{{Variant: "rpc", Source: audit.SourceAPI, Checked: true, OK: true}},
		Recovery: []Recovery{{FaultID: "f1", Variant: "rpc", TimeToDetect: duration.Ptr(time.Second)}},
		Verdict:  map[string]bool{"rpc": true},
	}
}

func TestWriteThenReadGivesTheSameJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.json")
	j := sampleJournal()
	if err := Write(path, j); err != nil {
		t.Fatal(err)
	}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	// MarshalIndent re-indents the raw definition; its content is what counts.
	var compact bytes.Buffer
	if err := json.Compact(&compact, got.Definition); err != nil {
		t.Fatal(err)
	}
	got.Definition = compact.Bytes()
	if !reflect.DeepEqual(got, j) {
		t.Errorf("round trip changed the journal:\n got %+v\nwant %+v", got, j)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), `"planned_at": "10s"`) {
		t.Errorf("durations should read as Go durations; file:\n%s", b)
	}
}

func TestReadNamesTheFileAndWhatIsWrong(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, path string
		want       []string
	}{
		{"missing", filepath.Join(dir, "nope.json"), []string{"nope.json", "no such file"}},
		{"empty", write("empty.json", ""), []string{"empty.json", "empty file"}},
		{"corrupt", write("corrupt.json", "{\n \"version\": 2,\n \"kind\": \"experiment\",,\n}"), []string{"corrupt.json", "corrupt JSON", "byte offset 40", "line 3"}},
		{"truncated", write("truncated.json", `{"version": 2, "kind": "exp`), []string{"truncated.json", "corrupt JSON"}},
		{"future version", write("v9.json", `{"version": 9, "kind": "experiment", "variants": ["rpc"]}`), []string{"v9.json", "version 9 is not supported", "reads version 2", "newer lab"}},
		{"version 1", write("v1.json", `{"version": 1, "kind": "experiment", "variants": ["rpc"], "samples": []}`), []string{"v1.json", "version 1 is not supported", "reads version 2", "histogram buckets", "release that wrote it"}},
		{"not a journal", write("other.json", `{"hello": "world"}`), []string{"other.json", "not a lab journal"}},
		{"wrong type", write("type.json", `{"version": 2, "kind": "experiment", "variants": "rpc"}`), []string{"type.json", "corrupt JSON", "byte offset"}},
		{"no variants", write("novariants.json", `{"version": 2, "kind": "experiment", "variants": []}`), []string{"novariants.json", "variants: empty"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(tc.path)
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestWriteRefusesAnInvalidJournalAndWritesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run.json")
	j := sampleJournal()
	j.Samples[0].Values["client_p99_seconds"] = math.NaN()
	err := Write(path, j)
	if err == nil || !strings.Contains(err.Error(), `samples[0].values["client_p99_seconds"]`) {
		t.Fatalf("want an error naming the sample and series, got %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("nothing may be written, found %v", entries)
	}
	j = sampleJournal()
	j.Samples[0].Variant = "grpc"
	if err := Write(path, j); err == nil || !strings.Contains(err.Error(), `samples[0].variant: "grpc"`) {
		t.Errorf("unknown variant: got %v", err)
	}
}

func TestSampleSetDropsValuesThatAreNotNumbers(t *testing.T) {
	var s Sample
	s.Set("a", 1)
	s.Set("b", math.NaN())
	s.Set("c", math.Inf(1))
	if len(s.Values) != 1 || s.Values["a"] != 1 {
		t.Errorf("values = %v", s.Values)
	}
}

// An unknown value survives the file as null and comes back unknown, not
// as 0 and not absent.
func TestUnknownValuesAreNullInTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.json")
	j := sampleJournal()
	j.Samples[0].SetUnknown(SeriesConsumerLag)
	if err := Write(path, j); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), `"consumer_lag": null`) {
		t.Errorf("an unknown lag must be written as null:\n%s", b)
	}
	back, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := back.Samples[0].Get(SeriesConsumerLag); ok || !back.Samples[0].IsUnknown(SeriesConsumerLag) {
		t.Errorf("read back: %+v", back.Samples[0])
	}
}
