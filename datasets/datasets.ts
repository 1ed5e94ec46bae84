// Evaluation and calibration text, by name from the Hugging Face Hub (cached and checksummed by
// lib/hub) or from a local file, each following the protocol of the GPTQ reference's datautils
// (methods.md §2):
//   wikitext2  Salesforce/wikitext wikitext-2-raw-v1; rows joined with "\n\n", tokenized once
//   ptb        ptb_text_only validation (calibration: train); sentences joined with "\n\n"
//   ptb-new    ptb_text_only test (calibration: train); sentences joined with " "
//   c4         allenai/c4 en validation shard 0: random.seed(0), 256 documents of ≥ seqlen tokens,
//              one random window each (calibration: train shard 0, documents of > seqlen tokens)
//   c4-new     the first 1100 validation documents joined with " ", the first 256·seqlen tokens
//   pile-val   calibration only: AutoAWQ's / llm-awq's (datasets/pile.ts)
//   pile-10k   calibration only: auto-round's (datasets/pile.ts)
// A file is used as-is (UTF-8) for both. Text sources calibrate with GPTQ's random windows.

import { type CalibrationOptions, calibrationWindows } from "../lib/data/calibration.ts";
import { PyRandom } from "../lib/data/pyrandom.ts";
import { readEvalText, sha256Hex } from "../lib/eval/text.ts";
import { type HubConfig, snapshot } from "../lib/hub/hub.ts";
import { loadPile, pileSpec } from "./pile.ts";
import { readRows } from "./rows.ts";

export { readRows };

interface HubText {
  repo: string;
  revision?: string;
  /** Files of the evaluation and the calibration splits. */
  test: string;
  train: string;
  column: string;
  /** "join": the rows joined by `sep`; "docs": documents sampled per window (C4). */
  kind: "join" | "docs" | "docs-joined";
  sep?: string;
}

const WIKITEXT2 = "wikitext-2-raw-v1";
const PTB = { repo: "ptb-text-only/ptb_text_only", revision: "refs/convert/parquet", column: "sentence" };
const C4 = {
  repo: "allenai/c4",
  test: "en/c4-validation.00000-of-00008.json.gz",
  train: "en/c4-train.00000-of-01024.json.gz",
  column: "text",
};

export const HUB_DATASETS: Record<string, HubText> = {
  wikitext2: {
    repo: "Salesforce/wikitext",
    test: `${WIKITEXT2}/test-00000-of-00001.parquet`,
    train: `${WIKITEXT2}/train-00000-of-00001.parquet`,
    column: "text",
    kind: "join",
    sep: "\n\n",
  },
  ptb: {
    ...PTB,
    test: "penn_treebank/validation/0000.parquet",
    train: "penn_treebank/train/0000.parquet",
    kind: "join",
    sep: "\n\n",
  },
  "ptb-new": {
    ...PTB,
    test: "penn_treebank/test/0000.parquet",
    train: "penn_treebank/train/0000.parquet",
    kind: "join",
    sep: " ",
  },
  c4: { ...C4, kind: "docs" },
  "c4-new": { ...C4, kind: "docs-joined", sep: " " },
};

export const DATASET_NAMES = Object.keys(HUB_DATASETS);
/** Names --calibration takes beside the datasets (each also as NAME=PATH). */

export interface Tok {
  encode(text: string): number[];
}

/** A text source resolved to local bytes: what a row records about its data. */
export interface TextData {
  /** What the user named: a dataset name or a file path. */
  name: string;
  /** Where the bytes came from: a file path, or hf://datasets/<repo>@<commit>/<path>. */
  source: string;
  /** sha256 of the text tokenized (joined rows) or, for document sampling, of the source file. */
  sha256: string;
  /** Token ids to cut into evaluation windows of `seqlen`. */
  evalIds(tok: Tok, seqlen: number): number[];
  /** Calibration windows (nsamples × seqlen ids). */
  calibration(tok: Tok, o: CalibrationOptions): number[][];
  /** Tokens of the whole text (text sources only; documents are sampled one by one). */
  tokenCount?(tok: Tok): number;
  /** A source that draws its windows with a fixed seed of its own (the Pile's shuffle: 42). */
  calibrationSeed?: number;
  /** How the windows are drawn, when not GPTQ's random windows. */
  calibrationDescription?: string;
}

export interface LoadOptions {
  split: "test" | "train";
  hub?: HubConfig;
  log?: (msg: string) => void;
}

/** Resolve a --dataset / --calibration value: a local file, else a dataset name. */
export async function loadText(spec: string, o: LoadOptions): Promise<TextData> {
  if (pileSpec(spec)) return loadPile(spec, o);
  const isFile = await Deno.stat(spec).then((s) => s.isFile, () => false);
  const hub = HUB_DATASETS[spec];
  if (isFile || !hub) {
    if (!isFile && !/[/.]/.test(spec)) {
      throw new Error(`dataset "${spec}": not a file, and not one of ${DATASET_NAMES.join(", ")}`);
    }
    const t = await readEvalText(spec);
    return textData(spec, spec, t.text, t.sha256);
  }
  const path = o.split === "test" ? hub.test : hub.train;
  const snap = await snapshot(hub.repo, {
    type: "dataset",
    revision: hub.revision,
    allow: (p) => p === path,
    under: path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : undefined,
    config: o.hub,
    log: o.log,
  });
  const file = `${snap.dir}/${path}`;
  const source = `hf://datasets/${hub.repo}@${snap.commit}/${path}`;
  const rows = await readRows(file, hub.column);
  if (hub.kind === "join") {
    const text = rows.join(hub.sep);
    return textData(spec, source, text, await sha256Hex(new TextEncoder().encode(text)));
  }
  const fileSha = snap.files[0].etag.length === 64
    ? snap.files[0].etag
    : await sha256Hex(await Deno.readFile(file));
  if (hub.kind === "docs-joined") {
    // c4-new: the first 1100 documents joined, cut to 256 windows.
    const text = rows.slice(0, 1100).join(hub.sep);
    const data = textData(spec, source, text, fileSha);
    return {
      ...data,
      evalIds: (tok, seqlen) => data.evalIds(tok, seqlen).slice(0, 256 * seqlen),
      calibration: (tok, c) => sampleDocWindows(rows, tok, c.nsamples, c.seqlen, c.seed, false),
      tokenCount: undefined,
    };
  }
  return {
    name: spec,
    source,
    sha256: fileSha,
    evalIds: (tok, seqlen) => sampleDocWindows(rows, tok, 256, seqlen, 0, true).flat(),
    calibration: (tok, c) => sampleDocWindows(rows, tok, c.nsamples, c.seqlen, c.seed, false),
  };
}

function textData(name: string, source: string, text: string, sha: string): TextData {
  let ids: number[] | null = null;
  const encode = (tok: Tok) => (ids ??= tok.encode(text));
  return {
    name,
    source,
    sha256: sha,
    evalIds: (tok) => encode(tok),
    tokenCount: (tok) => encode(tok).length,
    calibration: (tok, c) => {
      try {
        return calibrationWindows(encode(tok), c);
      } catch (e) {
        throw new Error(`${name}: ${(e as Error).message}`);
      }
    },
  };
}

/**
 * GPTQ's C4 sampling: for each window, random documents until one has enough tokens (≥ seqlen for
 * evaluation, > seqlen for calibration), then a random window of it; Python's random, seeded.
 */
export function sampleDocWindows(
  docs: string[],
  tok: Tok,
  n: number,
  seqlen: number,
  seed: number,
  inclusive: boolean,
): number[][] {
  const r = new PyRandom(seed);
  const out: number[][] = [];
  for (let s = 0; s < n; s++) {
    let ids: number[];
    for (let tries = 0;; tries++) {
      if (tries > 100_000) throw new Error(`no document of ${seqlen} tokens found after 100000 draws`);
      ids = tok.encode(docs[r.randint(0, docs.length - 1)]);
      if (inclusive ? ids.length >= seqlen : ids.length > seqlen) break;
    }
    // A document of exactly seqlen tokens: the reference's randint(0, −1) raises; we take the whole.
    const i = ids!.length > seqlen ? r.randint(0, ids!.length - seqlen - 1) : 0;
    out.push(ids!.slice(i, i + seqlen));
  }
  return out;
}
