// Both variants in one run: the same scenario (any executor) as two k6
// scenarios started together, tagged variant=rpc and variant=stream, each
// sending the same request sequence, with thresholds per variant.
//
//   k6 run loadtests/compare.js                                 # steady
//   k6 run -e SCENARIO=spike loadtests/compare.js
//   k6 run -e SCENARIO=ramp -e RPC_URL=http://webserver-rpc:7710 -e STREAM_URL=http://webserver-stream:7720 loadtests/compare.js
import { parseScenario, k6Scenario, k6Thresholds, scenarioFile } from './lib/scenario.js';
import { baseURL, makeRequester, newRunId, summaryFor, summaryTrendStats } from './lib/k6lab.js';

const FILE = scenarioFile(__ENV.SCENARIO, 'steady');
const NAME = FILE.name;
const scenario = parseScenario(open(FILE.path), FILE.path);
const RPC = baseURL('rpc');
const STREAM = baseURL('stream');
const maxVUs = __ENV.MAX_VUS ? parseInt(__ENV.MAX_VUS, 10) : undefined;

/** @type {import('k6/options').Options} */
export const options = {
  scenarios: {
    rpc: k6Scenario(scenario, { exec: 'rpc', tags: { variant: 'rpc' }, maxVUs }),
    stream: k6Scenario(scenario, { exec: 'stream', tags: { variant: 'stream' }, maxVUs }),
  },
  thresholds: Object.assign(k6Thresholds(scenario, 'rpc'), k6Thresholds(scenario, 'stream'), {
    dropped_iterations: ['count==0'],
  }),
  summaryTrendStats,
};

export function setup() {
  return { runId: newRunId(NAME) };
}

const send = makeRequester(scenario);

/** @param {{runId: string}} data */
export function rpc(data) {
  send(RPC, 'rpc', data.runId);
}

/** @param {{runId: string}} data */
export function stream(data) {
  send(STREAM, 'stream', data.runId);
}

/** @param {any} data */
export function handleSummary(data) {
  return summaryFor(NAME, ['rpc', 'stream'], data);
}
