// Ramping-arrival-rate scenarios (ramp, spike) against one variant.
//
//   k6 run loadtests/ramp.js                                    # ramp → rpc
//   k6 run -e SCENARIO=spike -e VARIANT=stream loadtests/ramp.js
import { parseScenario, k6Scenario, k6Thresholds, scenarioFile } from './lib/scenario.js';
import { baseURL, makeRequester, newRunId, summaryFor, summaryTrendStats } from './lib/k6lab.js';

const FILE = scenarioFile(__ENV.SCENARIO, 'ramp');
const NAME = FILE.name;
const scenario = parseScenario(open(FILE.path), FILE.path);
if (scenario.arrival.executor !== 'ramping-arrival-rate') {
  throw new Error(`scenario ${NAME} has a constant rate; run it with steady.js`);
}
const VARIANT = __ENV.VARIANT || 'rpc';
const BASE = baseURL(VARIANT);
const maxVUs = __ENV.MAX_VUS ? parseInt(__ENV.MAX_VUS, 10) : undefined;

/** @type {import('k6/options').Options} */
export const options = {
  scenarios: {
    [VARIANT]: k6Scenario(scenario, { tags: { variant: VARIANT }, maxVUs }),
  },
  thresholds: Object.assign(k6Thresholds(scenario, VARIANT), { dropped_iterations: ['count==0'] }),
  summaryTrendStats,
};

export function setup() {
  return { runId: newRunId(NAME) };
}

const send = makeRequester(scenario);

/** @param {{runId: string}} data */
export default function (data) {
  send(BASE, VARIANT, data.runId);
}

/** @param {any} data */
export function handleSummary(data) {
  return summaryFor(NAME, [VARIANT], data);
}
