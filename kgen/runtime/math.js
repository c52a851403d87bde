// @ts-check
// WebDNN's Math helpers: the indices of the k largest (argmax) or smallest (argmin) values, best first.

/** @param {ArrayLike<number>} values @param {number} k @param {number} sign */
function top(values, k, sign) {
  if (!Number.isSafeInteger(k) || k < 1) throw new Error(`kgen.Math: k must be a positive integer, got ${k}`);
  const index = Array.from({ length: values.length }, (_, i) => i);
  index.sort((a, b) => sign * (values[b] - values[a]) || a - b);
  return index.slice(0, k);
}

/** @param {ArrayLike<number>} values @param {number} [k] */
export function argmax(values, k = 1) {
  return top(values, k, 1);
}

/** @param {ArrayLike<number>} values @param {number} [k] */
export function argmin(values, k = 1) {
  return top(values, k, -1);
}
