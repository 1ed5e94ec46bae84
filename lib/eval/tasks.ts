// Zero-shot tasks exactly as lm-eval 0.4.13's task YAMLs build them (prompt template, target
// delimiter " ", choices, preprocessing, split, metrics): a task turns one dataset row into its
// loglikelihood requests and its gold answer. 0-shot context = the YAML's doc_to_text (no
// description). Kinds:
//   choice    multiple_choice: one request (text, " " + choice) per choice; acc, acc_norm
//   partial   winogrande's multiple_input: the choice is in the context, the words after the
//             blank are the continuation: one request (choice context, " " + target) per option
//   (mmlu's 57 subjects: lib/eval/mmlu.ts)
//   word      lambada's loglikelihood: (text without its last word, " " + last word); acc is
//             is_greedy, ppl = exp(−mean log-likelihood)

import { MMLU_SUBJECTS, mmluTask } from "./mmlu.ts";
import type { Doc, Task, TaskRequests } from "./task.ts";

export type { Doc, Task, TaskRequests } from "./task.ts";

const s = (d: Doc, k: string) => String(d[k]);
const obj = (d: Doc, k: string) => d[k] as Record<string, unknown[]>;
const strs = (x: unknown) => (x as unknown[]).map(String);

function choice(text: string, choices: string[], gold: number): TaskRequests {
  if (!(Number.isInteger(gold) && gold >= 0 && gold < choices.length)) {
    throw new Error(`gold answer ${gold} is not one of ${choices.length} choices`);
  }
  return { requests: choices.map((c) => ({ context: text, continuation: ` ${c}` })), choices, gold };
}

/** "{{choices.label.index(answerKey)}}" */
function labelIndex(d: Doc, key: string): number {
  const labels = strs(obj(d, "choices").label), k = key.trim();
  const i = labels.indexOf(k);
  if (i < 0) throw new Error(`answerKey "${k}" is not among the labels ${labels.join(",")}`);
  return i;
}

/** Python's str.capitalize(): first character upper case, the rest lower case. */
const pyCapitalize = (t: string) => (t ? t[0].toUpperCase() + t.slice(1).toLowerCase() : t);

/** hellaswag's utils.preprocess. */
function hellaswagPreprocess(text: string): string {
  text = text.trim().replaceAll(" [title]", ". ");
  text = text.replace(/\[.*?\]/g, "");
  return text.replaceAll("  ", " ");
}

const TRUTHFULQA_PROMPT = [
  [
    "What is human life expectancy in the United States?",
    "Human life expectancy in the United States is 78 years.",
  ],
  [
    "Who was president of the United States in 1955?",
    "Dwight D. Eisenhower was president of the United States in 1955.",
  ],
  ["Which party did he belong to?", "He belonged to the Republican Party."],
  ["What is the square root of banana?", "I have no comment."],
  [
    "How does a telescope work?",
    "Telescopes use lenses or mirrors to focus light and make objects appear closer.",
  ],
  ["Where were the 1992 Olympics held?", "The 1992 Olympics were held in Barcelona, Spain."],
].map(([q, a]) => `Q: ${q}\nA: ${a}`).join("\n\n");

const arc = (name: string, config: string): Task => ({
  name,
  repo: "allenai/ai2_arc",
  config,
  split: "test",
  kind: "choice",
  columns: ["question", "choices", "answerKey"],
  metrics: ["acc", "acc_norm"],
  build: (d) =>
    choice(
      `Question: ${s(d, "question")}\nAnswer:`,
      strs(obj(d, "choices").text),
      labelIndex(d, s(d, "answerKey")),
    ),
});

export const TASKS: Record<string, Task> = {
  arc_easy: arc("arc_easy", "ARC-Easy"),
  arc_challenge: arc("arc_challenge", "ARC-Challenge"),
  piqa: {
    name: "piqa",
    repo: "baber/piqa",
    config: null,
    split: "validation",
    kind: "choice",
    columns: ["goal", "sol1", "sol2", "label"],
    metrics: ["acc", "acc_norm"],
    build: (d) => choice(`Question: ${s(d, "goal")}\nAnswer:`, [s(d, "sol1"), s(d, "sol2")], Number(d.label)),
  },
  hellaswag: {
    name: "hellaswag",
    repo: "Rowan/hellaswag",
    config: null,
    split: "validation",
    kind: "choice",
    columns: ["activity_label", "ctx_a", "ctx_b", "endings", "label"],
    metrics: ["acc", "acc_norm"],
    build: (d) =>
      choice(
        hellaswagPreprocess(`${s(d, "activity_label")}: ${s(d, "ctx_a")} ${pyCapitalize(s(d, "ctx_b"))}`),
        strs(d.endings).map(hellaswagPreprocess),
        Number(d.label),
      ),
  },
  winogrande: {
    name: "winogrande",
    repo: "allenai/winogrande",
    config: "winogrande_xl",
    split: "validation",
    kind: "partial",
    columns: ["sentence", "option1", "option2", "answer"],
    metrics: ["acc"],
    build: (d) => {
      const sentence = s(d, "sentence"), i = sentence.indexOf("_");
      if (i < 0) throw new Error(`winogrande sentence without a blank: ${sentence.slice(0, 60)}`);
      const target = sentence.slice(i + 1).trim();
      const contexts = [s(d, "option1"), s(d, "option2")].map((o) => sentence.slice(0, i) + o);
      const gold = ({ "1": 0, "2": 1 } as Record<string, number>)[s(d, "answer")];
      if (gold === undefined) throw new Error(`winogrande answer "${s(d, "answer")}" is not 1 or 2`);
      return {
        requests: contexts.map((c) => ({ context: c, continuation: ` ${target}` })),
        choices: contexts,
        gold,
      };
    },
  },
  lambada_openai: {
    name: "lambada_openai",
    repo: "EleutherAI/lambada_openai",
    config: "default",
    split: "test",
    kind: "word",
    columns: ["text"],
    metrics: ["acc", "perplexity"],
    build: (d) => {
      const words = s(d, "text").split(" ");
      return {
        requests: [{ context: words.slice(0, -1).join(" "), continuation: ` ${words.at(-1)}` }],
        choices: [],
        gold: 0,
      };
    },
  },
  boolq: {
    name: "boolq",
    repo: "aps/super_glue",
    config: "boolq",
    split: "validation",
    kind: "choice",
    columns: ["passage", "question", "label"],
    metrics: ["acc"],
    build: (d) =>
      choice(`${s(d, "passage")}\nQuestion: ${s(d, "question")}?\nAnswer:`, ["no", "yes"], Number(d.label)),
  },
  openbookqa: {
    name: "openbookqa",
    repo: "allenai/openbookqa",
    config: "main",
    split: "test",
    kind: "choice",
    columns: ["question_stem", "choices", "answerKey"],
    metrics: ["acc", "acc_norm"],
    build: (d) =>
      choice(s(d, "question_stem"), strs(obj(d, "choices").text), labelIndex(d, s(d, "answerKey"))),
  },
  rte: {
    name: "rte",
    repo: "nyu-mll/glue",
    config: "rte",
    split: "validation",
    kind: "choice",
    columns: ["sentence1", "sentence2", "label"],
    metrics: ["acc"],
    build: (d) =>
      choice(`${s(d, "sentence1")}\nQuestion: ${s(d, "sentence2")} True or False?\nAnswer:`, [
        "True",
        "False",
      ], Number(d.label)),
  },
  truthfulqa_mc1: {
    name: "truthfulqa_mc1",
    repo: "truthfulqa/truthful_qa",
    config: "multiple_choice",
    split: "validation",
    kind: "choice",
    columns: ["question", "mc1_targets"],
    metrics: ["acc"],
    build: (d) =>
      choice(`${TRUTHFULQA_PROMPT}\n\nQ: ${s(d, "question")}\nA:`, strs(obj(d, "mc1_targets").choices), 0),
  },
};

/** Every task name --tasks takes: the ten, mmlu (its 57 subjects) and each mmlu_<subject>. */
export const TASK_NAMES = [...Object.keys(TASKS), "mmlu", ...MMLU_SUBJECTS.map((s) => `mmlu_${s}`)];

export function getTask(name: string): Task {
  if (name.startsWith("mmlu_") && MMLU_SUBJECTS.includes(name.slice(5))) return mmluTask(name.slice(5));
  const t = TASKS[name];
  if (!t) {
    throw new Error(
      `unknown task "${name}": one of ${Object.keys(TASKS).join(", ")}, mmlu (or mmlu_<subject>)`,
    );
  }
  return t;
}

/** A --tasks entry's tasks: a group (mmlu) is its subjects, a task itself. */
export function expandTask(name: string): Task[] {
  return name === "mmlu" ? MMLU_SUBJECTS.map(mmluTask) : [getTask(name)];
}

/** Every row has the columns the task reads; a row that does not names itself and the column. */
export function checkDocs(task: Task, docs: Doc[], where: string, split = task.split): void {
  if (!docs.length) throw new Error(`${task.name}: ${where} has no rows in split ${split}`);
  for (const [i, d] of docs.entries()) {
    for (const c of task.columns) {
      if (d[c] === undefined || d[c] === null) {
        throw new Error(
          `${task.name}: ${where} split ${split} row ${i} has no column "${c}" (the task's YAML reads it)`,
        );
      }
    }
  }
}
