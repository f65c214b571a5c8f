package load

import (
	"errors"
	"strings"
	"testing"
)

func TestRatingsFileReadsDemoFormatAndJSONLines(t *testing.T) {
	in := strings.Join([]string{
		"1::1193::5::978300760", // MovieLens style, timestamp ignored
		"2::661::3",
		"",
		`{"user_id":3,"movie_id":914,"rating":7.5}`,
		`{"movie_id":5,"rating":10,"request_id":"ignored"}`,
		`{"type":"header","run_id":"x"}`, // a ledger replays as is
	}, "\n")
	src, bad, err := ReadRatingsFile(strings.NewReader(in), "ratings.dat", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) != 0 || src.Len() != 4 {
		t.Fatalf("want 4 ratings and no bad line, got %d and %v", src.Len(), bad)
	}
	want := []Request{
		{Seq: 0, Kind: KindRating, UserID: 1, MovieID: 1193, Tenths: 50},
		{Seq: 1, Kind: KindRating, UserID: 2, MovieID: 661, Tenths: 30},
		{Seq: 2, Kind: KindRating, UserID: 3, MovieID: 914, Tenths: 75},
		{Seq: 3, Kind: KindRating, UserID: 0, MovieID: 5, Tenths: 100},
	}
	for i, w := range want {
		if got, ok := src.Request(uint64(i)); !ok || got != w {
			t.Errorf("rating %d: got %+v, want %+v", i, got, w)
		}
	}
	if _, ok := src.Request(4); ok {
		t.Error("the source must end after the file's last rating")
	}
}

func TestMalformedLinesAreReportedWithLineNumbers(t *testing.T) {
	in := "1::2::5\n1::2\nx::2::5\n1::2::11\n{\"movie_id\":1}\n{bad json\n3::4::2.5\n"
	_, _, err := ReadRatingsFile(strings.NewReader(in), "r.dat", false)
	var bl *BadLinesError
	if !errors.As(err, &bl) {
		t.Fatalf("want *BadLinesError, got %v", err)
	}
	if bl.Total != 5 {
		t.Errorf("want 5 bad lines, got %d: %v", bl.Total, err)
	}
	for _, want := range []string{"line 2:", "line 3: user_id", "line 4: rating", "line 5: rating: missing", "line 6:", "--skip-bad"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	src, skipped, err := ReadRatingsFile(strings.NewReader(in), "r.dat", true)
	if err != nil {
		t.Fatal(err)
	}
	if src.Len() != 2 || len(skipped) != 5 || skipped[0].Line != 2 {
		t.Errorf("--skip-bad: want the 2 good ratings and 5 skipped lines, got %d, %v", src.Len(), skipped)
	}
	if _, _, err := ReadRatingsFile(strings.NewReader("\n\n"), "empty", false); err == nil {
		t.Error("an empty file must be an error, not a silent no-op")
	}
}
