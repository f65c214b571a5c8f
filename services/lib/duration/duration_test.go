package duration

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestDurationIsGoDurationTextInJSON(t *testing.T) {
	for _, d := range []time.Duration{0, 250 * time.Millisecond, 1500 * time.Millisecond, time.Minute, 90 * time.Second, time.Hour} {
		b, err := json.Marshal(Duration(d))
		if err != nil {
			t.Fatal(err)
		}
		if want := `"` + d.String() + `"`; string(b) != want {
			t.Errorf("Marshal(%v) = %s, want %s", d, b, want)
		}
		var back Duration
		if err := json.Unmarshal(b, &back); err != nil || back.D() != d {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v", b, back, err, d)
		}
	}
}

func TestDurationReadsWhatEarlierJournalsWrote(t *testing.T) {
	var v struct {
		At  Duration  `json:"at"`
		P99 *Duration `json:"p99"`
		Nil *Duration `json:"nil"`
	}
	if err := json.Unmarshal([]byte(`{"at":"1m0s","p99":"12.5ms","nil":null}`), &v); err != nil {
		t.Fatal(err)
	}
	if v.At.D() != time.Minute || v.P99 == nil || v.P99.D() != 12500*time.Microsecond || v.Nil != nil {
		t.Errorf("got at=%v p99=%v nil=%v", v.At, v.P99, v.Nil)
	}
}

func TestDurationRejectsWhatIsNotADurationString(t *testing.T) {
	for _, in := range []string{`30`, `"30"`, `"soon"`, `true`} {
		var d Duration
		err := json.Unmarshal([]byte(in), &d)
		if err == nil || !strings.Contains(err.Error(), "want a duration string") {
			t.Errorf("Unmarshal(%s): err = %v, want one naming the expected form", in, err)
		}
	}
}
