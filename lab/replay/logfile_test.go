package replay

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/ratingslab/lab/services/lib/servetest"
	"github.com/ratingslab/lab/services/model"
)

func exportAll(t *testing.T, b *testBroker, spec ExportSpec) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := Export(servetest.Context(t, 30*time.Second), b.k, spec, &buf, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeFile(t *testing.T, content []byte) (string, func() (io.ReadCloser, error)) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "records.jsonl")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, func() (io.ReadCloser, error) { return os.Open(path) }
}

// Keys (null, empty, text, binary), values (tombstones too), headers and
// timestamps survive export → import into a new topic → export, byte for
// byte, each record on its partition and in its order.
func TestExportImportRoundTrip(t *testing.T) {
	b := newTestBroker(t)
	base := time.Date(2026, 1, 2, 3, 4, 5, 123_000_000, time.UTC)
	b.produce(model.TopicRatingsDLQ,
		kafka.Message{Partition: 0, Time: base, Key: []byte("42"), Value: []byte(`{"movie_id":42,"title":"<a & b>"}`),
			Headers: []kafka.Header{{Key: "dlq-reason", Value: []byte("malformed")}, {Key: "empty", Value: []byte{}}, {Key: "bin", Value: []byte{0xff, 0x00}}}},
		kafka.Message{Partition: 0, Time: base.Add(time.Millisecond), Key: nil, Value: []byte("no key\nnew line")},
		kafka.Message{Partition: 0, Time: base.Add(2 * time.Millisecond), Key: []byte{}, Value: nil},
		kafka.Message{Partition: 0, Time: base.Add(3 * time.Millisecond), Key: []byte{0xde, 0xad, 0xbe, 0xef}, Value: []byte{0x80}},
	)
	b.ratings("r", 200, 20, base)

	for _, topic := range []string{model.TopicRatingsDLQ, model.TopicRatings} {
		first := exportAll(t, b, ExportSpec{Topic: topic, Partition: -1})
		name, open := writeFile(t, first)
		copyTopic := topic + "-copy"
		res, err := Import(servetest.Context(t, 30*time.Second), b.k, name, open, ImportSpec{Topic: copyTopic}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Created || int(res.Records) != bytes.Count(first, []byte("\n")) {
			t.Fatalf("import of %s: %+v, want a created topic and %d records", topic, res, bytes.Count(first, []byte("\n")))
		}
		second := exportAll(t, b, ExportSpec{Topic: copyTopic, Partition: -1})
		if !bytes.Equal(first, second) {
			t.Fatalf("export → import → export of %s differs:\n--- first\n%s\n--- second\n%s", topic, first, second)
		}
	}

	dlq := string(exportAll(t, b, ExportSpec{Topic: model.TopicRatingsDLQ, Partition: -1}))
	for _, want := range []string{
		`{"partition":0,"timestamp":"2026-01-02T03:04:05.123Z","key":"42","value":"{\"movie_id\":42,\"title\":\"<a & b>\"}","headers":[{"key":"dlq-reason","value":"malformed"},{"key":"empty","value":""},{"key":"bin","value_base64":"/wA="}]}`,
		`"key":null,"value":"no key\nnew line"}`,
		`"key":"","value":null}`,
		`"key_base64":"3q2+7w==","value_base64":"gA=="}`,
	} {
		if !strings.Contains(dlq, want) {
			t.Errorf("export lacks %s:\n%s", want, dlq)
		}
	}
}

// --from/--to select by record timestamp and --partition one partition.
func TestExportRange(t *testing.T) {
	b := newTestBroker(t)
	base := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	msgs := b.ratings("r", 300, 12, base)
	from, to := base.Add(100*time.Millisecond), base.Add(250*time.Millisecond)
	part := msgs[0].Partition
	out := exportAll(t, b, ExportSpec{Topic: model.TopicRatings, From: from, To: to, Partition: part})
	var want int
	for _, m := range msgs {
		if m.Partition == part && !m.Time.Before(from) && m.Time.Before(to) {
			want++
		}
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if want == 0 || len(lines) != want {
		t.Fatalf("exported %d lines, want %d", len(lines), want)
	}
	for _, l := range lines {
		r, err := parseRecordLine([]byte(l))
		if err != nil || r.Partition != part || r.Time.Before(from) || !r.Time.Before(to) {
			t.Fatalf("line outside the range: %s (%v)", l, err)
		}
	}
}

// A bad line is rejected with its line number and nothing is imported,
// unless --skip-bad; a topic holding records is refused without --append.
func TestImportRejectsBadLines(t *testing.T) {
	b := newTestBroker(t)
	good := `{"partition":0,"timestamp":"2026-01-02T03:04:05Z","key":"1","value":"a"}`
	file := strings.Join([]string{
		good,
		`{"partition":0,"timestamp":"yesterday","key":"1","value":"a"}`,
		``,
		`{"partition":-1,"timestamp":"2026-01-02T03:04:05Z"}`,
		`{"partition":0,"timestamp":"2026-01-02T03:04:05Z","key":"1","key_base64":"MQ=="}`,
		`{"partition":0,"timestamp":"2026-01-02T03:04:05Z","offset":3}`,
		`not json`,
		good,
	}, "\n") + "\n"
	name, open := writeFile(t, []byte(file))
	ctx := servetest.Context(t, 30*time.Second)
	_, err := Import(ctx, b.k, name, open, ImportSpec{Topic: "imported"}, nil)
	var bad *BadLinesError
	if !errors.As(err, &bad) || bad.Total != 5 {
		t.Fatalf("import with bad lines: %v, want 5 bad lines", err)
	}
	for _, want := range []string{"line 2: timestamp", "line 4: partition", "line 5: key", "line 6:", "offset", "line 7:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if _, err := partitionCount(ctx, b.k, "imported"); !errors.Is(err, ErrNoTopic) {
		t.Fatalf("a refused import created its topic (%v)", err)
	}

	res, err := Import(ctx, b.k, name, open, ImportSpec{Topic: "imported", SkipBad: true}, nil)
	if err != nil || res.Records != 2 || res.SkippedTotal != 5 {
		t.Fatalf("--skip-bad: %+v, %v; want 2 imported, 5 skipped", res, err)
	}
	if _, err := Import(ctx, b.k, name, open, ImportSpec{Topic: "imported", SkipBad: true}, nil); err == nil || !strings.Contains(err.Error(), "--append") {
		t.Fatalf("import into a topic holding records: %v, want a refusal naming --append", err)
	}
	if res, err := Import(ctx, b.k, name, open, ImportSpec{Topic: "imported", SkipBad: true, Append: true}, nil); err != nil || res.Records != 2 {
		t.Fatalf("--append: %+v, %v", res, err)
	}

	wide, openWide := writeFile(t, []byte(`{"partition":7,"timestamp":"2026-01-02T03:04:05Z","value":"x"}`+"\n"))
	if _, err := Import(ctx, b.k, wide, openWide, ImportSpec{Topic: "imported", Append: true}, nil); err == nil || !strings.Contains(err.Error(), "line 1: partition: 7") {
		t.Fatalf("partition beyond the topic: %v", err)
	}
}
