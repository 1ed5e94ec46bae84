// The contract of a task (lib/eval/tasks.ts, lib/eval/mmlu.ts): how one dataset row becomes
// lm-eval's loglikelihood requests and its gold answer.

export type Doc = Record<string, unknown>;

export interface TaskRequests {
  requests: { context: string; continuation: string }[];
  /** doc_to_choice's strings (acc_norm's lengths), for choice / partial tasks. */
  choices: string[];
  gold: number;
}

export interface Task {
  name: string;
  /** The Hub dataset (repo, config) and the split lm-eval evaluates (test if it has one, else validation). */
  repo: string;
  config: string | null;
  split: string;
  kind: "choice" | "partial" | "word";
  /** Columns the YAML reads (checked before any model work). */
  columns: string[];
  metrics: string[];
  /** Where few-shot examples come from (first n rows), for tasks that take them (mmlu: dev). */
  fewshotSplit?: string;
  /** The group whose aggregate the task joins (mmlu's subjects). */
  group?: string;
  /** One document's requests; `shots`: the few-shot examples before it. */
  build(doc: Doc, shots?: Doc[]): TaskRequests;
}
