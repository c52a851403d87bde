// @ts-check
// Order statistics of timed samples: what the runner's profile, the thread choice and the in-page tuner report
// and compare.

/** The median (the upper one of an even count). @param {number[]} values */
export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** The interquartile range. @param {number[]} values */
export function iqr(values) {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor((3 * (s.length - 1)) / 4)] - s[Math.floor((s.length - 1) / 4)];
}
