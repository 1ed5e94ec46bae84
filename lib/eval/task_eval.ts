// One task on one model, as lm-eval evaluates it: documents (the first --limit of the split) →
// requests (few-shot examples the first n of the few-shot split) → encoded before any model work
// → scored (shared contexts once, lib/eval/prefix_kv.ts) → per-document metrics → the task's
// metrics under lm-eval's names with its standard errors:
//   choice / partial  acc (and acc_norm where the YAML lists it): mean, mean_stderr
//   word              acc = is_greedy: mean, mean_stderr; perplexity = exp(−mean ll), bootstrap stderr
// A group (mmlu) is its subjects' acc weighted by size, with lm-eval's pooled stderr.

import type { TextTokenizer } from "../io/tokenizer.ts";
import type { CausalLM } from "../model/model.ts";
import { type EncodedRequest, encodeRequest, type LlResult } from "./loglikelihood.ts";
import { bootstrapStderr, mean, meanStderr, multipleChoice, perplexityOf } from "./metrics.ts";
import { scoreReusingContexts } from "./prefix_kv.ts";
import type { TaskData } from "./task_data.ts";
import type { Task, TaskRequests } from "./tasks.ts";

type Tok = Pick<TextTokenizer, "encode" | "encodePlain" | "bosId" | "eosId" | "decode">;

export interface PreparedTask {
  task: Task;
  data: TaskData;
  numFewshot: number;
  built: TaskRequests[];
  encoded: EncodedRequest[][];
}

export interface TaskScore {
  /** Documents evaluated. */
  n: number;
  requests: number;
  /** lm-eval's names: acc, acc_stderr, acc_norm, acc_norm_stderr, perplexity, perplexity_stderr. */
  metrics: Record<string, number>;
  seconds: number;
}

/**
 * Requests of the first `limit` documents, encoded with the model's tokenizer (no model work);
 * `maxLength` (the model's positions): a continuation longer is refused here, as lm-eval does.
 */
export function prepareTask(
  task: Task,
  data: TaskData,
  tok: Tok,
  o: { limit?: number; numFewshot?: number; maxLength?: number },
): PreparedTask {
  const shots = o.numFewshot ?? 0;
  if (shots > 0 && !task.fewshotSplit) {
    throw new Error(`--num-fewshot ${shots}: ${task.name} has no few-shot split (only mmlu's subjects do)`);
  }
  if (shots > data.shots.length) {
    throw new Error(
      `--num-fewshot ${shots}: ${task.name}'s ${task.fewshotSplit} split has ${data.shots.length} rows`,
    );
  }
  const docs = o.limit === undefined ? data.docs : data.docs.slice(0, o.limit);
  const built = docs.map((d, i) => {
    try {
      return task.build(d, data.shots.slice(0, shots));
    } catch (e) {
      throw new Error(`${task.name}: ${data.source} row ${i}: ${(e as Error).message}`);
    }
  });
  const encoded = built.map((b, i) =>
    b.requests.map((r, j) => {
      const e = encodeRequest(tok, r), what = `${task.name}: ${data.source} row ${i} request ${j}`;
      if (!e.continuation.length) throw new Error(`${what}: the continuation encodes to no tokens`);
      if (o.maxLength !== undefined && e.continuation.length > o.maxLength) {
        throw new Error(
          `${what}: its continuation is ${e.continuation.length} tokens, more than the model's ${o.maxLength} positions`,
        );
      }
      return e;
    })
  );
  return { task, data, numFewshot: shots, built, encoded };
}

export interface EvalTaskOptions {
  maxLength: number;
  batchTokens?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Score a prepared task and compute its metrics. */
export async function evaluateTask(model: CausalLM, p: PreparedTask, o: EvalTaskOptions): Promise<TaskScore> {
  const t0 = performance.now();
  const flat = p.encoded.flat();
  const lls = await scoreReusingContexts(model, flat, o);
  const perDoc: LlResult[][] = [];
  let k = 0;
  for (const e of p.encoded) perDoc.push(lls.slice(k, k += e.length));
  return {
    n: p.built.length,
    requests: flat.length,
    metrics: taskMetrics(p.task, p.built, perDoc),
    seconds: (performance.now() - t0) / 1000,
  };
}

/** The task's metrics and standard errors from its documents' scored requests. */
export function taskMetrics(task: Task, built: TaskRequests[], perDoc: LlResult[][]): Record<string, number> {
  const out: Record<string, number> = {};
  if (task.kind === "word") {
    const acc = perDoc.map((r) => (r[0].greedy ? 1 : 0)), lls = perDoc.map((r) => r[0].logprob);
    out.acc = mean(acc);
    out.acc_stderr = meanStderr(acc);
    out.perplexity = perplexityOf(lls);
    out.perplexity_stderr = bootstrapStderr(perplexityOf, lls);
    return out;
  }
  const docs = built.map((b, i) => multipleChoice(perDoc[i].map((r) => r.logprob), b.choices, b.gold));
  for (const m of task.metrics as ("acc" | "acc_norm")[]) {
    const xs = docs.map((d) => d[m]);
    out[m] = mean(xs);
    out[`${m}_stderr`] = meanStderr(xs);
  }
  return out;
}

/** lm-eval's group aggregate (weight_by_size): Σ n·acc / Σ n, pooled_sample_stderr. */
export function groupMetrics(
  parts: { n: number; metrics: Record<string, number> }[],
): Record<string, number> {
  const N = parts.reduce((s, p) => s + p.n, 0);
  const acc = parts.reduce((s, p) => s + p.n * p.metrics.acc, 0) / N;
  const pooled = parts.reduce((s, p) => s + (p.n - 1) * p.metrics.acc_stderr ** 2 * p.n, 0) /
    (N - parts.length);
  return { acc, acc_stderr: Math.sqrt(pooled / N) };
}
