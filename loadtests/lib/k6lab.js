// The k6 side of a lab run: sending the scenario's requests to a variant
// with the tags Grafana and the thresholds group by, target addresses, the
// run id, and the end-of-test summary.
import http from 'k6/http';
import exec from 'k6/execution';
import { makeGenerator, ratingValue } from './generator.js';
import { summaryFile } from './scenario.js';

/** @typedef {import('./scenario.js').Scenario} Scenario */

/**
 * The base URL of a variant: RPC_URL / STREAM_URL, or the native lab's
 * webserver port from LAB_PORT_BASE (default 7700; rpc +10, stream +20,
 * see lab/layout/ports.go).
 * @param {string} variant
 * @returns {string}
 */
export function baseURL(variant) {
  const fromEnv = __ENV[`${variant.toUpperCase()}_URL`];
  if (fromEnv) return fromEnv.replace(/\/$/, '');
  const portBase = parseInt(__ENV.LAB_PORT_BASE || '7700', 10);
  const offsets = /** @type {Object<string, number>} */ ({ rpc: 10, stream: 20 });
  if (!(variant in offsets)) throw new Error(`variant ${variant}: unknown; set ${variant.toUpperCase()}_URL`);
  return `http://127.0.0.1:${portBase + offsets[variant]}`;
}

/**
 * A run id for request ids, made once in setup() so every VU shares it.
 * @param {string} scenario
 * @returns {string}
 */
export function newRunId(scenario) {
  if (__ENV.RUN_ID) return __ENV.RUN_ID;
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `k6-${scenario}-${stamp}-${Math.floor(Math.random() * 65536).toString(16).padStart(4, '0')}`;
}

// An unknown movie must be rejected; anything else must succeed. These
// decide http_req_failed, so the success threshold means what lab load's
// success rate means.
const expectSuccess = http.expectedStatuses({ min: 200, max: 299 });
const expectRejection = http.expectedStatuses({ min: 400, max: 499 });

/**
 * Returns a function that sends request number exec.scenario.iterationInTest
 * of the scenario's sequence to one variant. Each k6 scenario counts its own
 * iterations, so two k6 scenarios (one per variant) send the same sequence.
 * @param {Scenario} s
 * @returns {(base: string, variant: string, runId: string) => void}
 */
export function makeRequester(s) {
  const request = makeGenerator(s);
  const timeout = s.request_timeout;
  return function send(base, variant, runId) {
    const seq = exec.scenario.iterationInTest;
    const r = request(seq);
    const responseCallback = r.unknown ? expectRejection : expectSuccess;
    switch (r.kind) {
      case 'rating': {
        /** @type {{request_id: string, movie_id: number, rating: number, user_id?: number}} */
        const body = { request_id: `${runId}-${variant}-${seq}`, movie_id: r.movieId, rating: ratingValue(r.tenths) };
        if (r.userId > 0) body.user_id = r.userId;
        http.post(`${base}/api/ratings`, JSON.stringify(body), {
          headers: { 'Content-Type': 'application/json' },
          tags: { variant, kind: 'rating', name: 'POST /api/ratings' },
          timeout,
          responseCallback,
        });
        return;
      }
      case 'movie':
        http.get(`${base}/api/movies/${r.movieId}`, {
          tags: { variant, kind: 'movie', name: 'GET /api/movies/{id}' },
          timeout,
          responseCallback,
        });
        return;
      default:
        http.get(`${base}/api/movies?offset=${r.offset}&limit=${r.limit}`, {
          tags: { variant, kind: 'list', name: 'GET /api/movies' },
          timeout,
          responseCallback: expectSuccess,
        });
    }
  };
}

/**
 * @param {any} data k6's summary data
 * @param {string} metric
 * @param {string} stat
 * @returns {number | undefined}
 */
function stat(data, metric, stat) {
  const m = data.metrics[metric];
  return m && m.values ? m.values[stat] : undefined;
}

/**
 * handleSummary's answer: a short table per variant on stdout and the full
 * summary as JSON in $SUMMARY_DIR (default: the directory k6 runs in; "-": no
 * file), see summaryFile.
 * @param {string} name
 * @param {string[]} variants
 * @param {any} data
 * @returns {Object<string, string>}
 */
export function summaryFor(name, variants, data) {
  const ms = (/** @type {number | undefined} */ v) => (v === undefined ? '-' : `${v.toFixed(1)} ms`);
  const lines = [`scenario ${name}`];
  for (const v of variants) {
    const reqs = stat(data, `http_reqs{variant:${v}}`, 'count');
    const failed = stat(data, `http_req_failed{variant:${v}}`, 'rate');
    lines.push(
      `  ${v.padEnd(8)} requests ${reqs === undefined ? '-' : reqs}` +
        `  not as expected ${failed === undefined ? '-' : (failed * 100).toFixed(2) + '%'}` +
        `  p50 ${ms(stat(data, `http_req_duration{variant:${v}}`, 'med'))}` +
        `  p99 ${ms(stat(data, `http_req_duration{variant:${v}}`, 'p(99)'))}`,
    );
  }
  const dropped = stat(data, 'dropped_iterations', 'count');
  if (dropped) lines.push(`  dropped iterations: ${dropped} (k6 ran out of VUs: the schedule was not kept; raise MAX_VUS)`);
  const thresholds = Object.entries(data.metrics)
    .flatMap(([metric, m]) => Object.entries((m && m.thresholds) || {}).map(([t, r]) => ({ metric, t, ok: r.ok })))
    // The request count's threshold only makes k6 keep the count (see k6Thresholds).
    .filter((x) => !(x.metric.startsWith('http_reqs') && x.t === 'count>=0'))
    .map((x) => `  ${x.ok ? 'pass' : 'FAIL'}  ${x.metric}: ${x.t}`);
  /** @type {Object<string, string>} */
  const out = { stdout: [...lines, ...thresholds].join('\n') + '\n' };
  const file = summaryFile(__ENV.SUMMARY_DIR, name);
  if (file) out[file] = JSON.stringify(data, null, 2);
  return out;
}

export const summaryTrendStats = ['avg', 'min', 'med', 'p(90)', 'p(99)', 'max'];
