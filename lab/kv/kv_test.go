package kv

import "testing"

func TestJoinWritesPairsInKeyOrder(t *testing.T) {
	for _, c := range []struct {
		in   map[string]string
		want string
	}{
		{nil, ""},
		{map[string]string{"latency": "2s"}, "latency=2s"},
		{map[string]string{"rate": "0.5", "jitter": "100ms", "latency": "1s"}, "jitter=100ms, latency=1s, rate=0.5"},
		{map[string]string{"empty": ""}, "empty="},
	} {
		if got := Join(c.in); got != c.want {
			t.Errorf("Join(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}
