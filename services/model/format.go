package model

import "fmt"

// Format is how the log variant's event values are written: the lab's own
// JSON, or Avro in the Confluent wire format with a schema registry.
type Format string

const (
	FormatJSON Format = "json"
	FormatAvro Format = "avro"
)

// DefaultFormat is the format a lab runs with unless told otherwise. JSON
// stays the default: it is what a person reads in `kcat -C` and `lab log
// export`, and it needs no registry; `lab up --format avro` switches every
// producer and consumer of the log.
const DefaultFormat = FormatJSON

// ParseFormat reads a --format value ("" is the default).
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatJSON, FormatAvro:
		return f, nil
	case "":
		return DefaultFormat, nil
	}
	return "", fmt.Errorf("--format %q: want json or avro", s)
}
