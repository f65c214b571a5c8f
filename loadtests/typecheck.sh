#!/bin/sh
# Checks the k6 scripts without a k6 binary:
#   1. every script and lib/ module type-checks against @types/k6 (checkJs),
#      so a wrong API call or option shape fails the build;
#   2. fixtures/broken.js, full of such mistakes, must FAIL the same check
#      (proof that the check bites);
#   3. lib/generator.js produces the same request sequences as lab/load
#      and every scenario maps onto a k6 executor (check-lib.mjs, node)
#      (fixtures/sequences.json, written by the Go tests).
# Run from anywhere; `make test` runs it (and `go test ./loadtests` does too).
set -eu
cd "$(dirname "$0")"

if [ ! -x node_modules/.bin/tsc ] || [ ! -d node_modules/@types/k6 ]; then
	npm ci --no-audit --no-fund --loglevel=error
fi
tsc=node_modules/.bin/tsc

echo "typecheck: k6 scripts"
"$tsc" -p tsconfig.json

echo "typecheck: fixtures/broken.js must be rejected"
if out=$("$tsc" -p fixtures/tsconfig.json 2>&1); then
	echo "FAIL: fixtures/broken.js type-checked; the check would not catch broken scripts" >&2
	exit 1
fi
errors=$(printf '%s\n' "$out" | grep -c '^fixtures/broken.js(' || true)
if [ "$errors" -lt 5 ] || ! printf '%s\n' "$out" | grep -q 'constant-arival-rate'; then
	echo "FAIL: fixtures/broken.js should fail with its 5 deliberate errors, got:" >&2
	printf '%s\n' "$out" >&2
	exit 1
fi
echo "typecheck: broken fixture rejected with $errors errors, as it should be"

node check-lib.mjs
