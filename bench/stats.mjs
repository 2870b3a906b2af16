// Medians, spreads and paired ratios for the bench's rows, and how they are printed.

/** Median, min and max of some numbers. */
export function spread(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return { median: s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2, min: s[0], max: s.at(-1), n: s.length };
}
export const median = (xs) => spread(xs).median;

const sec = (ms) => (ms / 1000).toFixed(2);
export const fmtS = (ms) => `${sec(ms)} s`;
/** `3.14 s (3.02-3.40)`: the median of repeated timings and their range; `3.14 s (1 run)` for one. */
export function fmtTimes(xs) {
  const s = spread(xs);
  return s.n === 1 ? `${fmtS(s.median)} (1 run)` : `${fmtS(s.median)} (${sec(s.min)}-${sec(s.max)})`;
}
export const fmtMBs = (bytes, ms) => `${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s`;
/** The median timing with its spread, then the speed at the median. */
export const fmtRate = (bytes, xs) => `${fmtTimes(xs)}, ${fmtMBs(bytes, median(xs))}`;
export const fmtMB = (kb) => `${(kb / 1024).toFixed(0)} MB`;
export const pct = (r) => `${(r * 100).toFixed(0)}%`;
export const times = (r) => `${r.toFixed(2)}x`;
export const yn = (ok) => (ok ? 'yes' : 'no');

/**
 * num[i] / den[i] rep by rep (each rep runs the contenders one after the other, so the two sides
 * of a ratio saw the same machine), with the ratio of the medians beside them. `median` is the
 * one the verdicts use: a machine busier in one rep than another moves both sides of that rep.
 */
export function paired(num, den) {
  if (num.length !== den.length) throw new Error(`paired: ${num.length} against ${den.length} runs`);
  const s = spread(num.map((x, i) => x / den[i]));
  return { ...s, ofMedians: median(num) / median(den) };
}

/** `59% (paired 58%, 55-62%)`: the ratio of the medians, then the median and range of per-rep ratios. */
export function fmtPaired(p, fmt = pct) {
  const low = fmt(p.min).replace(/[%x]$/, '');
  return p.n === 1 ? fmt(p.ofMedians) : `${fmt(p.ofMedians)} (paired ${fmt(p.median)}, ${low}-${fmt(p.max)})`;
}

/** `23` or `23-25` requests: counts that should not vary between reps, and the range when they do. */
export function fmtCount(xs) {
  const s = spread(xs);
  return s.min === s.max ? String(s.min) : `${s.min}-${s.max}`;
}
