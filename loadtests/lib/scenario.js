// Scenario files (scenarios/*.json) as the k6 scripts read them: parsing,
// the defaults lab/load applies (keep in sync with applyDefaults in
// lab/load/scenario.go) and the mapping onto k6 executors and thresholds.
// No k6 imports here, so node can run it too.

/**
 * @typedef {object} Stage
 * @property {string} duration
 * @property {number} target
 *
 * @typedef {object} Scenario
 * @property {string} name
 * @property {string} [description]
 * @property {number} seed
 * @property {{executor: 'constant-arrival-rate'|'ramping-arrival-rate', rate?: number, duration?: string, start_rate?: number, stages?: Stage[]}} arrival
 * @property {{rating: number, movie: number, list: number}} mix
 * @property {{min_id: number, max_id: number, popularity: 'uniform'|'zipf', zipf_s?: number, unknown_fraction: number}} movies
 * @property {{min_id: number, max_id: number}} users
 * @property {{distribution: 'uniform'|'normal'|'weighted', min: number, max: number, decimals: number, mean?: number, stddev?: number, weights?: Object<string, number>}} ratings
 * @property {{limit: number}} list
 * @property {string} request_timeout
 * @property {{success_rate: number, p99_ms: number}} thresholds
 */

/**
 * Parses a scenario file's text and fills in the defaults.
 * @param {string} text
 * @param {string} file for error messages
 * @returns {Scenario}
 */
export function parseScenario(text, file) {
  /** @type {any} */
  let raw;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON: ${e}`);
  }
  const s = /** @type {Scenario} */ (Object.assign({}, raw));
  // Field by field, only what the file leaves out (an explicit 0 stays 0,
  // and lab/load rejects it where 0 is not allowed); the mix as a whole.
  s.seed = s.seed ?? 0;
  s.mix = Object.assign({ rating: 0, movie: 0, list: 0 }, raw.mix ?? { rating: 1 });
  s.movies = Object.assign({ min_id: 1, max_id: 100, popularity: 'uniform', unknown_fraction: 0 }, raw.movies);
  if (s.movies.popularity === 'zipf' && s.movies.zipf_s === undefined) s.movies.zipf_s = 1;
  s.users = Object.assign({ min_id: 1, max_id: 10000 }, raw.users);
  s.ratings = Object.assign({ distribution: 'uniform', min: 1, max: 10, decimals: 0 }, raw.ratings);
  s.list = Object.assign({ limit: 20 }, raw.list);
  s.request_timeout = s.request_timeout ?? '10s';
  s.thresholds = Object.assign({ success_rate: 0.99, p99_ms: 1000 }, raw.thresholds);
  const a = s.arrival;
  if (!a || (a.executor !== 'constant-arrival-rate' && a.executor !== 'ramping-arrival-rate')) {
    throw new Error(`${file}: arrival.executor must be constant-arrival-rate or ramping-arrival-rate`);
  }
  return s;
}

/**
 * Parses a k6/Go duration string ("1m30s", "500ms") into seconds.
 * @param {string} d
 * @returns {number}
 */
export function seconds(d) {
  const units = /** @type {Object<string, number>} */ ({ h: 3600, m: 60, s: 1, ms: 0.001, us: 1e-6, µs: 1e-6, ns: 1e-9 });
  let total = 0;
  const re = /([0-9.]+)(ms|us|µs|ns|h|m|s)/g;
  let m;
  let matched = '';
  while ((m = re.exec(d)) !== null) {
    total += parseFloat(m[1]) * units[m[2]];
    matched += m[0];
  }
  if (matched !== d) throw new Error(`duration ${JSON.stringify(d)}: want a duration like "30s" or "1m30s"`);
  return total;
}

/**
 * The highest arrival rate of the schedule, requests/s.
 * @param {Scenario} s
 * @returns {number}
 */
export function peakRate(s) {
  const a = s.arrival;
  if (a.executor === 'constant-arrival-rate') return a.rate || 0;
  return Math.max(a.start_rate || 0, ...(a.stages || []).map((st) => st.target));
}

/**
 * The k6 scenario for a lab scenario: the same open-model schedule. VUs are
 * k6's workers; maxVUs must cover peak rate × the slowest answer, or k6 drops
 * iterations (counted in dropped_iterations, which the thresholds forbid).
 * @param {Scenario} s
 * @param {{exec?: string, tags?: Object<string, string>, maxVUs?: number}} [extra]
 * @returns {import('k6/options').Scenario}
 */
export function k6Scenario(s, extra = {}) {
  const peak = peakRate(s);
  const timeout = seconds(s.request_timeout);
  const maxVUs = extra.maxVUs || Math.min(Math.max(Math.ceil(peak * Math.min(timeout, 5)), 10), 5000);
  const preAllocatedVUs = Math.min(Math.max(Math.ceil(peak / 10), 5), maxVUs);
  const a = s.arrival;
  const common = {
    preAllocatedVUs,
    maxVUs,
    timeUnit: '1s',
    gracefulStop: s.request_timeout,
    exec: extra.exec,
    tags: extra.tags,
  };
  if (a.executor === 'constant-arrival-rate') {
    return Object.assign({ executor: /** @type {const} */ ('constant-arrival-rate'), rate: a.rate || 0, duration: a.duration || '0s' }, common);
  }
  return Object.assign(
    {
      executor: /** @type {const} */ ('ramping-arrival-rate'),
      startRate: a.start_rate || 0,
      stages: (a.stages || []).map((st) => ({ duration: st.duration, target: st.target })),
    },
    common,
  );
}

/**
 * The scenario's thresholds for one variant (or all traffic when variant is
 * empty): the share of requests answered as expected (2xx; 4xx for an
 * unknown movie — see expectedStatuses in k6lab.js), p99 latency, and no
 * dropped iteration (k6 could not keep the open-model schedule). The
 * request count carries an always-true threshold: k6 puts a tagged
 * sub-metric (http_reqs{variant:rpc}) in the summary data only when a
 * threshold names it, and the summary table prints that count.
 * @param {Scenario} s
 * @param {string} [variant]
 * @returns {Object<string, string[]>}
 */
export function k6Thresholds(s, variant) {
  const tag = variant ? `{variant:${variant}}` : '';
  const maxFailed = Math.round((1 - s.thresholds.success_rate) * 1e6) / 1e6;
  return {
    [`http_req_failed${tag}`]: [`rate<=${maxFailed}`],
    [`http_req_duration${tag}`]: [`p(99)<${s.thresholds.p99_ms}`],
    [`http_reqs${tag}`]: ['count>=0'],
  };
}

/**
 * Where a script finds the scenario SCENARIO names: a bare name means
 * scenarios/<name>.json next to the scripts; a path (with a slash or ending
 * in .json) is used as is — the compose stack passes
 * /loadtests/scenarios/<name>.json.
 * @param {string | undefined} value the SCENARIO environment variable
 * @param {string} fallback the script's default scenario name
 * @returns {{name: string, path: string}}
 */
export function scenarioFile(value, fallback) {
  const v = value || fallback;
  if (v.includes('/') || v.endsWith('.json')) {
    const base = v.slice(v.lastIndexOf('/') + 1);
    return { name: base.replace(/\.json$/, ''), path: v };
  }
  return { name: v, path: `./scenarios/${v}.json` };
}

/**
 * Where handleSummary writes a run's JSON summary: in $SUMMARY_DIR, or else
 * in the directory k6 runs in. k6 cannot create folders, so the default must
 * be one that exists and is writable; "-" writes no file (stdout only).
 * @param {string | undefined} dir
 * @param {string} name
 * @returns {string | undefined}
 */
export function summaryFile(dir, name) {
  if (dir === '-') return undefined;
  const d = (dir || '.').replace(/\/+$/, '') || '/';
  return `${d === '/' ? '' : d}/${name}-summary.json`;
}
