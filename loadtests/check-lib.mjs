// Runs the k6-independent parts of lib/ under node (typecheck.sh calls it):
//  - lib/generator.js (what k6 sends) and lab/load's Go generator (what
//    `lab load` sends) produce the same request sequence: the JS output is
//    compared with fixtures/sequences.json, which the Go tests write and
//    check (go test ./lab/load -run Fixture);
//  - every shipped scenario maps onto a k6 executor with the same schedule.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { makeGenerator, requestDraws } from './lib/generator.js';
import { parseScenario, k6Scenario, k6Thresholds, scenarioFile, seconds, summaryFile } from './lib/scenario.js';
import { readdirSync } from 'node:fs';

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

// Every scenario file maps onto k6 with the same schedule.
const eq = (what, got, want) => {
  if (JSON.stringify(got) !== JSON.stringify(want)) fail(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
};
for (const f of readdirSync(join(here, 'scenarios')).filter((f) => f.endsWith('.json'))) {
  const s = parseScenario(readFileSync(join(here, 'scenarios', f), 'utf8'), f);
  eq(`${f}: name`, s.name + '.json', f);
  const k = k6Scenario(s, { exec: 'rpc', tags: { variant: 'rpc' } });
  eq(`${f}: executor`, k.executor, s.arrival.executor);
  if (k.executor === 'constant-arrival-rate') {
    eq(`${f}: rate`, [k.rate, k.duration, k.timeUnit], [s.arrival.rate, s.arrival.duration, '1s']);
  } else if (k.executor === 'ramping-arrival-rate') {
    eq(`${f}: stages`, [k.startRate, k.stages], [s.arrival.start_rate || 0, s.arrival.stages]);
  }
  if (!(k.preAllocatedVUs >= 1 && k.maxVUs >= k.preAllocatedVUs)) fail(`${f}: VUs ${k.preAllocatedVUs}/${k.maxVUs}`);
  eq(`${f}: tags`, [k.exec, k.tags], ['rpc', { variant: 'rpc' }]);
  const th = k6Thresholds(s, 'rpc');
  eq(`${f}: p99 threshold`, th['http_req_duration{variant:rpc}'], [`p(99)<${s.thresholds.p99_ms}`]);
  // Without a threshold naming it, k6 leaves http_reqs{variant:rpc} out of
  // the summary data and the summary's request count reads "-".
  eq(`${f}: request count in the summary`, th['http_reqs{variant:rpc}'], ['count>=0']);
}
eq('seconds', [seconds('1m30s'), seconds('500ms'), seconds('2h')], [90, 0.5, 7200]);
eq('scenarioFile name', scenarioFile('spike', 'steady'), { name: 'spike', path: './scenarios/spike.json' });
eq('scenarioFile path', scenarioFile('/loadtests/scenarios/ramp.json', 'steady'), { name: 'ramp', path: '/loadtests/scenarios/ramp.json' });
eq('scenarioFile default', scenarioFile(undefined, 'steady'), { name: 'steady', path: './scenarios/steady.json' });
// k6 cannot create folders: the default summary goes where k6 runs.
eq('summaryFile default', summaryFile(undefined, 'steady'), './steady-summary.json');
eq('summaryFile dir', summaryFile('/home/k6/', 'smoke'), '/home/k6/smoke-summary.json');
eq('summaryFile off', summaryFile('-', 'smoke'), undefined);
let threw = false;
try {
  seconds('soon');
} catch {
  threw = true;
}
eq('seconds rejects junk', threw, true);

if (failures > 0) {
  console.error(`check-lib: ${failures} failure(s)`);
  process.exit(1);
}
console.log(`check-lib: lib/generator.js matches lab/load on ${Object.keys(fixture.sequences).length} scenarios; every scenario maps onto k6`);
