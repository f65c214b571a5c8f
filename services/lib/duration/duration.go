// Package duration is the lab's one duration type for files and APIs: a
// time.Duration written as Go duration text ("250ms", "1m30s") in JSON, so
// experiment files, journals, load scenarios and the services' fault API
// read and write durations alike.
package duration

import (
	"encoding/json"
	"fmt"
	"time"
)

// Duration is a time.Duration that is text in JSON: time.Duration's String
// form on the way out, anything time.ParseDuration takes on the way in.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// Ptr returns a pointer to d as a Duration, for optional fields.
func Ptr(d time.Duration) *Duration {
	v := Duration(d)
	return &v
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string such as \"250ms\" or \"1m30s\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration string such as \"250ms\" or \"1m30s\", got %q", s)
	}
	*d = Duration(v)
	return nil
}
