package replay

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"
)

// The file format of `lab log export` and `lab log import` (docs/replay.md):
// one record per line, fields always in this order,
//
//	{"partition":3,"timestamp":"2026-01-02T03:04:05.123Z","key":"42","value":"{\"movie_id\":42}","headers":[{"key":"h","value":"v"}]}
//
// key, value and header values are JSON strings when they are valid UTF-8,
// and "key_base64"/"value_base64" otherwise; null (or absent) is a null key
// or value (a tombstone), "" an empty one. headers is left out when there are
// none. Offsets are not in the file: a topic assigns its own, so a file
// imported into a new topic exports again byte for byte; the order of the
// lines of one partition is the order of its records.

// maxLine bounds one line of an import file (a record of up to 8 MiB,
// base64-encoded, with room to spare).
const maxLine = 16 << 20

// appendRecordLine renders r as one line (with the newline).
func appendRecordLine(b []byte, r Record) []byte {
	b = append(b, `{"partition":`...)
	b = strconv.AppendInt(b, int64(r.Partition), 10)
	b = append(b, `,"timestamp":"`...)
	b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = appendBytesField(b, "key", r.Key)
	b = appendBytesField(b, "value", r.Value)
	if len(r.Headers) > 0 {
		b = append(b, `,"headers":[`...)
		for i, h := range r.Headers {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"key":`...)
			b = appendJSONString(b, h.Key)
			b = appendBytesField(b, "value", h.Value)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, "}\n"...)
}

// appendBytesField writes ,"name":... for bytes that may be null, text or binary.
func appendBytesField(b []byte, name string, v []byte) []byte {
	switch {
	case v == nil:
		return append(append(append(b, `,"`...), name...), `":null`...)
	case utf8.Valid(v):
		b = append(append(append(b, `,"`...), name...), `":`...)
		return appendJSONString(b, string(v))
	default:
		b = append(append(append(b, `,"`...), name...), `_base64":"`...)
		b = base64.StdEncoding.AppendEncode(b, v)
		return append(b, '"')
	}
}

// appendJSONString quotes valid UTF-8 as a JSON string, leaving <, > and &
// alone (encoding/json would escape them, which is valid but unreadable in
// record values that are themselves JSON).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// lineJSON is a line as decoded; pointers tell absent/null from empty.
type lineJSON struct {
	Partition   *int         `json:"partition"`
	Timestamp   *string      `json:"timestamp"`
	Key         *string      `json:"key"`
	KeyBase64   *string      `json:"key_base64"`
	Value       *string      `json:"value"`
	ValueBase64 *string      `json:"value_base64"`
	Headers     []headerJSON `json:"headers"`
}

type headerJSON struct {
	Key         *string `json:"key"`
	Value       *string `json:"value"`
	ValueBase64 *string `json:"value_base64"`
}

// parseRecordLine decodes one line strictly; the error names the field.
func parseRecordLine(line []byte) (Record, error) {
	var l lineJSON
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return Record{}, fmt.Errorf("not a record object: %v", err)
	}
	if dec.More() {
		return Record{}, errors.New("more than one JSON value on the line")
	}
	var r Record
	if l.Partition == nil {
		return r, errors.New("partition: is required")
	}
	if *l.Partition < 0 {
		return r, fmt.Errorf("partition: must be >= 0, got %d", *l.Partition)
	}
	r.Partition = *l.Partition
	if l.Timestamp == nil {
		return r, errors.New("timestamp: is required (RFC 3339, e.g. 2026-01-02T03:04:05.123Z)")
	}
	t, err := time.Parse(time.RFC3339Nano, *l.Timestamp)
	if err != nil {
		return r, fmt.Errorf("timestamp: %q is not RFC 3339", *l.Timestamp)
	}
	r.Time = t
	if r.Key, err = bytesField("key", l.Key, l.KeyBase64); err != nil {
		return r, err
	}
	if r.Value, err = bytesField("value", l.Value, l.ValueBase64); err != nil {
		return r, err
	}
	for i, h := range l.Headers {
		if h.Key == nil {
			return r, fmt.Errorf("headers[%d].key: is required", i)
		}
		v, err := bytesField(fmt.Sprintf("headers[%d].value", i), h.Value, h.ValueBase64)
		if err != nil {
			return r, err
		}
		r.Headers = append(r.Headers, kafka.Header{Key: *h.Key, Value: v})
	}
	return r, nil
}

func bytesField(name string, text, b64 *string) ([]byte, error) {
	switch {
	case text != nil && b64 != nil:
		return nil, fmt.Errorf("%s: give %s or %s_base64, not both", name, name, name)
	case text != nil:
		return []byte(*text), nil
	case b64 != nil:
		v, err := base64.StdEncoding.DecodeString(*b64)
		if err != nil {
			return nil, fmt.Errorf("%s_base64: not standard base64: %v", name, err)
		}
		return v, nil
	}
	return nil, nil
}

// LineError is one bad line of an import file.
type LineError struct {
	Line int
	Err  error
}

func (e LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

// scanLines calls fn for each non-blank line with its 1-based number. A
// line longer than maxLine is an error naming it.
func scanLines(r io.Reader, fn func(n int, line []byte) error) error {
	br := bufio.NewReaderSize(r, 1<<20)
	n := 0
	var long []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, chunk...)
			if len(long) > maxLine {
				return LineError{Line: n + 1, Err: fmt.Errorf("longer than %d bytes", maxLine)}
			}
			continue
		}
		line := chunk
		if long != nil {
			line = append(long, chunk...)
			long = nil
		}
		if len(line) > 0 {
			n++
			if t := bytes.TrimSpace(line); len(t) > 0 {
				if ferr := fn(n, t); ferr != nil {
					return ferr
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
