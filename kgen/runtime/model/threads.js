// @ts-check
// The number of wasm threads as a choice the page makes while it runs. A threaded program's kernels also run on
// the page's thread alone (every tile, no workers), so the runner can try both counts on the page's own runs:
// a few runs with each, then the faster count; and again when runs slow down, as when another tab or process
// takes a core and the workers wait for it (with a core busy, the MobileNet-like net ran 6x slower on 2 threads
// than on one); and again after a while, since a comparison of a few runs of a small model may have caught a
// hiccup.

import { median } from "./stats.js";

const WARM = 4; // runs after the first that are no sample (the engine's optimizing tier is still compiling) ...
const SETTLED = 1.5; // ... and more until the last WARM are within this ratio of each other: while the engine
// compiles beside them, the workers wait for a core (2-thread DCGAN runs of 0.25 ms took up to 12 ms)
const WARM_MOST = 60; // ... but no more than this many (a busy core may never let them settle)
const BLOCK = 4; // runs of one count in a row while comparing; a block's first is no sample (the change)
const EXPLORE = 4 * BLOCK; // runs comparing the counts: blocks of the other count, the chosen one, the other, the
// chosen one (6 samples a count). A drift, such as the engine still compiling its optimized code beside the
// workers (it made a few 2-thread runs 10x slower on the DCGAN net), falls on both counts, and what it leaves
// falls first on the count that would replace the chosen one, so it does not flip the choice
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
    /** the last runs' times while warming up; null once warm @type {number[] | null} */
    this.warming = [];
    this.typical = Infinity;
    this.strikes = 0;
    /** runs until the next comparison */
    this.countdown = Infinity;
    /** comparisons made so far */
    this.comparisons = 0;
  }

  /** The count the next run uses: while comparing, blocks of runs with each count (alternating runs made the
   * workers sleep between their runs, and waking them took up to 6 ms on a 0.3 ms model). */
  next() {
    if (this.exploring === 0 || this.warming) return this.chosen;
    const other = this.chosen === 1 ? this.most : 1;
    return Math.floor((EXPLORE - this.exploring) / BLOCK) % 2 === 0 ? other : this.chosen;
  }

  /** A run's time with `threads`. @param {number} threads @param {number} ms */
  observe(threads, ms) {
    if (this.warming) {
      this.warming.push(ms);
      const last = this.warming.slice(-WARM);
      const settled = last.length === WARM && Math.max(...last) <= SETTLED * Math.min(...last);
      if (settled || this.warming.length >= WARM_MOST) this.warming = null;
      return;
    }
    if (this.exploring > 0) {
      if ((EXPLORE - this.exploring) % BLOCK > 0) this.samples[threads].push(ms);
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
