#!/usr/bin/python3
"""Decode Confluent-framed Avro records that kcat dumps with -f '%R%s'.

Debian's kcat is built without libserdes, so `kcat -s value=avro -r URL`
is not available here. This does what libserdes does, with Apache Avro's
own Python implementation (Debian's python3-avro), independently of the
lab's Go code: read each value's magic byte and schema id, fetch the
writer's schema from the registry's REST API (GET /schemas/ids/{id}), and
decode the body with it. One JSON object per record on stdout:
{"schema_id": N, "value": {...}}. Exits non-zero on anything it cannot
decode, naming the record.

Usage: kcat -C -b BROKER -t TOPIC -e -o beginning -f '%R%s' | avrocat.py REGISTRY_URL
"""
import io
import json
import struct
import sys
import urllib.request

import avro.io
import avro.schema


def main():
    registry = sys.argv[1].rstrip("/")
    schemas = {}
    data = sys.stdin.buffer.read()
    pos, n = 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">i", data[pos:pos + 4])
        pos += 4
        if length < 0:  # a null value (tombstone)
            print(json.dumps({"value": None}))
            continue
        value = data[pos:pos + length]
        pos += length
        n += 1
        if len(value) < 5 or value[0] != 0:
            sys.exit(f"record {n}: not the Confluent wire format: {value[:8]!r}")
        (schema_id,) = struct.unpack(">I", value[1:5])
        if schema_id not in schemas:
            with urllib.request.urlopen(f"{registry}/schemas/ids/{schema_id}", timeout=5) as resp:
                schemas[schema_id] = avro.schema.parse(json.load(resp)["schema"])
        schema = schemas[schema_id]
        body = io.BytesIO(value[5:])
        record = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(body))
        if body.tell() != len(value) - 5:
            sys.exit(f"record {n}: {len(value) - 5 - body.tell()} trailing bytes")
        print(json.dumps({"schema_id": schema_id, "value": record}, default=str))


if __name__ == "__main__":
    main()
