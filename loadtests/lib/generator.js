// The request sequence of a scenario, the same as lab/load's Go generator
// (lab/load/rng.go, generate.go): request i depends only on (scenario, seed,
// i), so k6 and `lab load` send the same requests for the same seed.
// check-lib.mjs proves it against fixtures/sequences.json, which the Go
// tests write. No k6 imports here, so node can run it too.

/** @typedef {import('./scenario.js').Scenario} Scenario */

/**
 * One request of the sequence.
 * @typedef {object} Request
 * @property {number} seq
 * @property {'rating'|'movie'|'list'} kind
 * @property {number} movieId   rating, movie
 * @property {number} userId    rating
 * @property {number} tenths    rating, in tenths of a point (75 = 7.5)
 * @property {number} offset    list
 * @property {number} limit     list
 * @property {boolean} unknown  a movie outside the catalog: expect a 4xx
 */

export const UNKNOWN_MOVIE_BASE = 900000;
const UNKNOWN_MOVIE_SPAN = 100000;

/**
 * MurmurHash3's 32-bit finalizer.
 * @param {number} h
 * @returns {number}
 */
export function fmix32(h) {
  h = h >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The draws of request i: mulberry32 seeded with fmix32(seed + i*0x9E3779B9).
 * @param {number} seed 0..2^32-1
 * @param {number} index 0..2^32-1
 * @returns {() => number} the next 32-bit draw
 */
export function requestDraws(seed, index) {
  let state = fmix32((seed + Math.imul(index, 0x9e3779b9)) >>> 0);
  return function next() {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t = (t + Math.imul(t ^ (t >>> 7), t | 61)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/**
 * @param {number} n number of ranks
 * @param {number} s exponent
 * @returns {number[]} cumulative distribution of ranks 1..n with weight 1/rank^s
 */
function zipfCDF(n, s) {
  const cdf = new Array(n);
  let sum = 0;
  for (let k = 1; k <= n; k++) {
    sum += Math.pow(k, -s);
    cdf[k - 1] = sum;
  }
  for (let i = 0; i < n; i++) cdf[i] /= sum;
  return cdf;
}

/**
 * @param {Scenario} s a scenario with defaults applied (see scenario.js)
 * @returns {(seq: number) => Request}
 */
export function makeGenerator(s) {
  const mixTotal = s.mix.rating + s.mix.movie + s.mix.list;
  const ratingPlusMovie = s.mix.rating + s.mix.movie;
  const movieN = s.movies.max_id - s.movies.min_id + 1;
  const cdf = s.movies.popularity === 'zipf' ? zipfCDF(movieN, s.movies.zipf_s || 1) : null;
  const userN = s.users.max_id - s.users.min_id + 1;
  const lo = Math.round(s.ratings.min * 10);
  const hi = Math.round(s.ratings.max * 10);
  const limit = s.list.limit;
  const pages = Math.floor((movieN + limit - 1) / limit);
  /** @type {{tenths: number, cum: number}[]} */
  const weights = [];
  if (s.ratings.distribution === 'weighted') {
    const entries = Object.entries(s.ratings.weights || {})
      .map(([k, w]) => ({ tenths: Math.round(parseFloat(k) * 10), w }))
      .sort((a, b) => a.tenths - b.tenths);
    let cum = 0;
    for (const e of entries) {
      cum += e.w;
      weights.push({ tenths: e.tenths, cum });
    }
  }

  /** @param {number} u */
  function movieRank(u) {
    if (!cdf) return Math.floor(u * movieN);
    let a = 0;
    let b = cdf.length; // first index with u < cdf[i]
    while (a < b) {
      const m = (a + b) >>> 1;
      if (u < cdf[m]) b = m;
      else a = m + 1;
    }
    return a === cdf.length ? a - 1 : a;
  }

  /** @param {number} u @param {number} u2 */
  function ratingTenths(u, u2) {
    switch (s.ratings.distribution) {
      case 'normal': {
        const z = Math.sqrt(-2 * Math.log(1 - u)) * Math.cos(2 * Math.PI * u2);
        const v = (s.ratings.mean || 0) + (s.ratings.stddev || 0) * z;
        const t = s.ratings.decimals === 1 ? Math.floor(v * 10 + 0.5) : Math.floor(v + 0.5) * 10;
        return Math.min(Math.max(t, lo), hi);
      }
      case 'weighted': {
        const x = u * weights[weights.length - 1].cum;
        for (const w of weights) if (x < w.cum) return w.tenths;
        return weights[weights.length - 1].tenths;
      }
      default:
        if (s.ratings.decimals === 1) return lo + Math.floor(u * (hi - lo + 1));
        return (lo / 10 + Math.floor(u * ((hi - lo) / 10 + 1))) * 10;
    }
  }

  return function request(seq) {
    const next = requestDraws(s.seed >>> 0, seq >>> 0);
    // Draw order is part of the format: kind, unknown?, movie/page, user, rating, rating2.
    const uKind = next() / 4294967296;
    const uUnknown = next() / 4294967296;
    const uMovie = next() / 4294967296;
    const uUser = next() / 4294967296;
    const uRating = next() / 4294967296;
    const uRating2 = next() / 4294967296;
    /** @type {Request} */
    const r = { seq, kind: 'list', movieId: 0, userId: 0, tenths: 0, offset: 0, limit: 0, unknown: false };
    const x = uKind * mixTotal;
    r.kind = x < s.mix.rating ? 'rating' : x < ratingPlusMovie ? 'movie' : 'list';
    if (r.kind === 'list') {
      r.limit = limit;
      r.offset = Math.floor(uMovie * pages) * limit;
      return r;
    }
    if (uUnknown < s.movies.unknown_fraction) {
      r.unknown = true;
      r.movieId = UNKNOWN_MOVIE_BASE + Math.floor(uMovie * UNKNOWN_MOVIE_SPAN);
    } else {
      r.movieId = s.movies.min_id + movieRank(uMovie);
    }
    if (r.kind === 'rating') {
      r.userId = s.users.min_id + Math.floor(uUser * userN);
      r.tenths = ratingTenths(uRating, uRating2);
    }
    return r;
  };
}

/**
 * A rating as the API takes it: 7 or 7.5.
 * @param {number} tenths
 * @returns {number}
 */
export function ratingValue(tenths) {
  return tenths / 10;
}
