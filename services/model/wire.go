package model

import (
	"encoding/binary"
	"fmt"
)

// The Confluent wire format of a record value: magic byte 0, the schema id
// as a 4-byte big-endian integer, then the Avro binary body.
const (
	wireMagic      = 0
	wireHeaderSize = 5
)

// appendWireHeader starts a Confluent-framed value for schema id.
func appendWireHeader(b []byte, id int) []byte {
	b = append(b, wireMagic)
	return binary.BigEndian.AppendUint32(b, uint32(id))
}

// splitWire reads the header of a Confluent-framed value. A value that is
// too short or starts with another byte is an *EventError (it goes to the
// DLQ): no registry lookup can fix it.
func splitWire(value []byte) (id int, body []byte, err error) {
	if len(value) == 0 || value[0] != wireMagic {
		got := "an empty value"
		if len(value) > 0 {
			got = fmt.Sprintf("byte 0x%02x", value[0])
			if value[0] == '{' {
				got += " ('{': JSON, written by a producer in --format json?)"
			}
		}
		return 0, nil, eventErr(ReasonWrongMagicByte, "value", "want the Confluent wire format (magic byte 0x00, schema id, Avro body), got %s", got)
	}
	if len(value) < wireHeaderSize {
		return 0, nil, eventErr(ReasonTruncated, "value", "Confluent header needs %d bytes, got %d", wireHeaderSize, len(value))
	}
	return int(binary.BigEndian.Uint32(value[1:wireHeaderSize])), value[wireHeaderSize:], nil
}
