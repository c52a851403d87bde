// @ts-check
// The number of wasm threads as a choice the page makes while it runs. A threaded program's kernels also run on
// the page's thread alone (every tile, no workers), so the runner can try both counts on the page's own runs:
// a few runs with each, then the faster count; and again when runs slow down, as when another tab or process
// takes a core and the workers wait for it (with a core busy, the MobileNet-like net ran 6x slower on 2 threads
// than on one); and again after a while, since a comparison of a few runs of a small model may have caught a
// hiccup.

import { median } from "./stats.js";

const WARM = 3; // runs after the first that are no sample (the engine's optimizing tier is still compiling)
const EXPLORE = 12; // runs comparing the counts: a block of half of them with each (5 samples a count)
const RECHECK = 100; // runs after a comparison before the next one, doubling each time (a noisy one is not final)
const MARGIN = 0.95; // the other count replaces the chosen one where its median is at most this share of it
const SLOWER = 1.3; // a run this much slower than the chosen count's median is a sign the machine changed
const STRIKES = 3; // ... and this many in a row start a new comparison

export class ThreadChoice {
  /** @param {number} most the program's threads */
  constructor(most) {
    this.most = most;
    /** the count runs use once chosen */
    this.chosen = most;
    /** @type {Record<number, number[]>} */
    this.samples = { 1: [], [most]: [] };
    this.exploring = EXPLORE;
    this.warming = WARM;
    this.typical = Infinity;
    this.strikes = 0;
    /** runs until the next comparison */
    this.countdown = Infinity;
    /** comparisons made so far */
    this.comparisons = 0;
  }

  /** The count the next run uses: while comparing, a block of runs with each count (alternating runs made the
   * workers sleep between their runs, and waking them took up to 6 ms on a 0.3 ms model). */
  next() {
    if (this.exploring === 0 || this.warming > 0) return this.chosen;
    return EXPLORE - this.exploring < EXPLORE / 2 ? this.most : 1;
  }

  /** A run's time with `threads`. @param {number} threads @param {number} ms */
  observe(threads, ms) {
    if (this.warming > 0) {
      this.warming--;
      return;
    }
    if (this.exploring > 0) {
      if ((EXPLORE - this.exploring) % (EXPLORE / 2) > 0) this.samples[threads].push(ms); // a block's first: a change
      if (--this.exploring > 0) return;
      /** @type {Record<number, number>} */
      const medians = { 1: median(this.samples[1]), [this.most]: median(this.samples[this.most]) };
      const other = this.chosen === 1 ? this.most : 1;
      if (medians[other] < MARGIN * medians[this.chosen]) this.chosen = other; // a noisy round does not flip it
      this.typical = medians[this.chosen];
      this.comparisons++;
      this.countdown = RECHECK * 2 ** Math.min(this.comparisons - 1, 6);
      return;
    }
    this.strikes = ms > SLOWER * this.typical ? this.strikes + 1 : 0;
    if (this.strikes >= STRIKES || --this.countdown <= 0) {
      this.samples = { 1: [], [this.most]: [] };
      this.exploring = EXPLORE;
      this.strikes = 0;
    }
  }
}
