// Proves that lib/generator.js (what k6 sends) and lab/load's Go generator
// (what `lab load` sends) produce the same request sequence: it compares the
// JS output with fixtures/sequences.json, which the Go tests write and check
// (go test ./lab/load -run Fixture). Run by typecheck.sh.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { makeGenerator, requestDraws } from './lib/generator.js';
import { parseScenario } from './lib/scenario.js';

const here = dirname(fileURLToPath(import.meta.url));
const fixture = JSON.parse(readFileSync(join(here, 'fixtures', 'sequences.json'), 'utf8'));
const kinds = { rating: 0, movie: 1, list: 2 };
let failures = 0;
const fail = (msg) => {
  failures++;
  if (failures <= 10) console.error(msg);
};

for (const d of fixture.draws) {
  const next = requestDraws(d.seed, d.index);
  const got = d.values.map(() => next());
  if (JSON.stringify(got) !== JSON.stringify(d.values)) {
    fail(`draws of seed ${d.seed} index ${d.index}: JS ${got}, Go ${d.values}`);
  }
}
for (const [name, rows] of Object.entries(fixture.sequences)) {
  const file = join(here, 'scenarios', `${name}.json`);
  const request = makeGenerator(parseScenario(readFileSync(file, 'utf8'), file));
  rows.forEach((want, seq) => {
    const r = request(seq);
    const got = [kinds[r.kind], r.movieId, r.userId, r.tenths, r.offset, r.limit, r.unknown ? 1 : 0];
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      fail(`scenario ${name} request ${seq}: JS ${JSON.stringify(got)}, Go ${JSON.stringify(want)} (${fixture.columns.join(', ')})`);
    }
  });
}
if (failures > 0) {
  console.error(`check-generator: ${failures} mismatch(es) between lib/generator.js and lab/load`);
  process.exit(1);
}
console.log(`check-generator: lib/generator.js matches lab/load on ${Object.keys(fixture.sequences).length} scenarios`);
