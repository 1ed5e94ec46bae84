// lm-eval's metrics of a multiple-choice document and their aggregation (lm_eval 0.4.13
// api/task.py process_results, api/metrics.py): acc = argmax of the choices' log-likelihoods is
// the gold one; acc_norm divides each by the choice's length in characters (Python's len: code
// points), acc_bytes by its UTF-8 length; argmax is numpy's (the first maximum). A document's
// value is 1 or 0; a task reports their mean and lm-eval's standard error of it.

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
