// lm-eval's metrics of a multiple-choice document and their aggregation (lm_eval 0.4.13
// api/task.py process_results, api/metrics.py): acc = argmax of the choices' log-likelihoods is
// the gold one; acc_norm divides each by the choice's length in characters (Python's len: code
// points), acc_bytes by its UTF-8 length; argmax is numpy's (the first maximum). A document's
// value is 1 or 0; a task reports their mean and lm-eval's standard error of it.

import { PyRandom } from "../data/pyrandom.ts";

export interface ChoiceMetrics {
  acc: number;
  acc_norm: number;
  acc_bytes: number;
}

/** numpy.argmax: the index of the first maximum (NaN wins, as numpy's does). */
export function argmax(xs: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) {
    if (Number.isNaN(xs[best])) break;
    if (Number.isNaN(xs[i]) || xs[i] > xs[best]) best = i;
  }
  return best;
}

/** One document: log-likelihoods of its choices (strings as doc_to_choice gives them), the gold index or indices. */
export function multipleChoice(lls: number[], choices: string[], gold: number | number[]): ChoiceMetrics {
  if (lls.length !== choices.length) {
    throw new Error(`${lls.length} log-likelihoods for ${choices.length} choices`);
  }
  const golds = Array.isArray(gold) ? gold : [gold];
  const hit = (i: number) => (golds.includes(i) ? 1 : 0);
  const chars = choices.map((c) => [...c].length),
    bytes = choices.map((c) => new TextEncoder().encode(c).length);
  return {
    acc: hit(argmax(lls)),
    acc_norm: hit(argmax(lls.map((l, i) => l / chars[i]))),
    acc_bytes: hit(argmax(lls.map((l, i) => l / bytes[i]))),
  };
}

export const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** lm-eval's mean_stderr: the sample standard deviation (n − 1) over √n. */
export function meanStderr(xs: number[]): number {
  if (xs.length < 2) return NaN;
  const mu = mean(xs);
  return Math.sqrt(xs.reduce((s, x) => s + (x - mu) ** 2, 0) / (xs.length - 1)) / Math.sqrt(xs.length);
}

/**
 * lm-eval's bootstrap_stderr (the standard error of a statistic without a closed form, e.g.
 * lambada's perplexity): iters/1000 chunks, chunk i drawing with Python's random.Random(i) 1000
 * resamples of len(xs) items by random.choices (⌊random()·n⌋), then the sample standard
 * deviation of the replicates.
 */
export function bootstrapStderr(f: (xs: number[]) => number, xs: number[], iters = 100_000): number {
  const chunk = Math.min(1000, iters), n = xs.length, reps: number[] = [];
  const draw = new Array<number>(n);
  for (let i = 0; i < Math.floor(iters / chunk); i++) {
    const r = new PyRandom(i);
    for (let c = 0; c < chunk; c++) {
      for (let k = 0; k < n; k++) draw[k] = xs[Math.floor(r.random() * n)];
      reps.push(f(draw));
    }
  }
  const mu = pySum(reps) / reps.length;
  return Math.sqrt(pySum(reps.map((x) => (x - mu) ** 2)) / (reps.length - 1));
}

/** Python's built-in sum over floats: left to right (what lm-eval's mean uses). */
function pySum(xs: number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s;
}

/** lm-eval's perplexity aggregation: exp(−mean(log-likelihoods)). */
export const perplexityOf = (lls: number[]) => Math.exp(-(pySum(lls) / lls.length));
