// MMLU as lm-eval 0.4.13's tasks/mmlu/default builds it: one task per subject (cais/mmlu, the
// subject's config, split test; few-shot examples the first n of split dev), the prompt
//   description "The following are multiple choice questions (with answers) about <subject>.\n\n"
//   + per shot "<question.strip()>\nA. …\nB. …\nC. …\nD. …\nAnswer: <letter>\n\n"
//   + the same block of the document without its letter,
// choices " A" … " D", acc only. The group `mmlu` (and its four categories) averages the
// subjects' acc weighted by their sizes, with the pooled standard error.

import type { Doc, Task, TaskRequests } from "./task.ts";

/** The subjects by lm-eval's category groups (mmlu_stem, mmlu_other, …), each list sorted. */
export const MMLU_CATEGORIES: Record<string, string[]> = {
  stem: [
    "abstract_algebra",
    "anatomy",
    "astronomy",
    "college_biology",
    "college_chemistry",
    "college_computer_science",
    "college_mathematics",
    "college_physics",
    "computer_security",
    "conceptual_physics",
    "electrical_engineering",
    "elementary_mathematics",
    "high_school_biology",
    "high_school_chemistry",
    "high_school_computer_science",
    "high_school_mathematics",
    "high_school_physics",
    "high_school_statistics",
    "machine_learning",
  ],
  other: [
    "business_ethics",
    "clinical_knowledge",
    "college_medicine",
    "global_facts",
    "human_aging",
    "management",
    "marketing",
    "medical_genetics",
    "miscellaneous",
    "nutrition",
    "professional_accounting",
    "professional_medicine",
    "virology",
  ],
  social_sciences: [
    "econometrics",
    "high_school_geography",
    "high_school_government_and_politics",
    "high_school_macroeconomics",
    "high_school_microeconomics",
    "high_school_psychology",
    "human_sexuality",
    "professional_psychology",
    "public_relations",
    "security_studies",
    "sociology",
    "us_foreign_policy",
  ],
  humanities: [
    "formal_logic",
    "high_school_european_history",
    "high_school_us_history",
    "high_school_world_history",
    "international_law",
    "jurisprudence",
    "logical_fallacies",
    "moral_disputes",
    "moral_scenarios",
    "philosophy",
    "prehistory",
    "professional_law",
    "world_religions",
  ],
};

export const MMLU_SUBJECTS = Object.values(MMLU_CATEGORIES).flat().sort();

const LETTERS = ["A", "B", "C", "D"];

/** "<question.strip()>\nA. …\nD. …\nAnswer:" (Python's strip: surrounding whitespace). */
function question(d: Doc): string {
  const ch = (d.choices as unknown[]).map(String);
  if (ch.length !== 4) throw new Error(`mmlu: a question with ${ch.length} choices, not 4`);
  return `${String(d.question).trim()}\n${ch.map((c, i) => `${LETTERS[i]}. ${c}`).join("\n")}\nAnswer:`;
}

function gold(d: Doc): number {
  const a = Number(d.answer);
  if (!(Number.isInteger(a) && a >= 0 && a < 4)) throw new Error(`mmlu: answer ${d.answer} is not 0–3`);
  return a;
}

export function mmluTask(subject: string): Task {
  const description = `The following are multiple choice questions (with answers) about ${
    subject.replaceAll("_", " ")
  }.\n\n`;
  return {
    name: `mmlu_${subject}`,
    repo: "cais/mmlu",
    config: subject,
    split: "test",
    fewshotSplit: "dev",
    group: "mmlu",
    kind: "choice",
    columns: ["question", "choices", "answer"],
    metrics: ["acc"],
    build(d: Doc, shots: Doc[] = []): TaskRequests {
      const examples = shots.map((s) => `${question(s)} ${LETTERS[gold(s)]}\n\n`).join("");
      const text = description + examples + question(d);
      return {
        requests: LETTERS.map((l) => ({ context: text, continuation: ` ${l}` })),
        choices: LETTERS,
        gold: gold(d),
      };
    },
  };
}

/** The category group of a subject (stem, other, social_sciences, humanities). */
export function mmluCategory(subject: string): string {
  const c = Object.entries(MMLU_CATEGORIES).find(([, ss]) => ss.includes(subject));
  if (!c) throw new Error(`mmlu: unknown subject "${subject}"`);
  return c[0];
}
