// Calibration from the Pile, as the reference codes draw it (methods.md §2). Both shuffle the
// documents with Hugging Face datasets' `shuffle(seed=42)` (numpy's default_rng permutation,
// lib/data/numpy_random.ts), then:
//   pile-val   AutoAWQ / llm-awq get_calib_dataset: mit-han-lab/pile-val-backup validation; each
//              document stripped and encoded (with BOS); longer than seqlen → skipped, empty →
//              skipped; the first nsamples kept, concatenated and cut into ⌊total / seqlen⌋ windows.
//   pile-10k   auto-round get_pile_dataset + its filter: NeelNanda/pile-10k train; each document
//              encoded truncated to seqlen (BOS included); shorter than seqlen → skipped, a window
//              whose last token fills more than half of it → skipped; the first nsamples kept.
// A name alone reads the Hub (the parquet files of the split, cached and checksummed); NAME=PATH
// reads a local parquet / JSON-lines file, or a folder laid out like the Hub repo.

import { numpyPermutation } from "../lib/data/numpy_random.ts";
import { sha256Hex } from "../lib/eval/text.ts";
import { snapshot } from "../lib/hub/hub.ts";
import type { LoadOptions, TextData, Tok } from "./datasets.ts";
import { readRows } from "./rows.ts";
import { pyStrip } from "../lib/data/pystr.ts";

interface PileSource {
  repo: string;
  revision?: string;
  /** The split's files, relative to the repo (or to a local folder laid out like it). */
  files: (path: string) => boolean;
  layout: string;
  draw: (docs: string[], tok: Tok, nsamples: number, seqlen: number) => number[][];
  /** What the windows are, for the log and the rows. */
  describe: string;
}

/** The shuffle seed both reference codes use (not --seed: their windows do not depend on it). */
export const PILE_SHUFFLE_SEED = 42;

export const PILE_SOURCES: Record<string, PileSource> = {
  "pile-val": {
    repo: "mit-han-lab/pile-val-backup",
    // The Hub's parquet conversion of val.jsonl.zst (same rows, same order).
    revision: "refs/convert/parquet",
    files: (p) => p.startsWith("default/validation/") && p.endsWith(".parquet"),
    layout: "default/validation/*.parquet",
    draw: awqPileWindows,
    describe: "AutoAWQ's pile-val: documents ≤ seqlen tokens, concatenated, cut into windows",
  },
  "pile-10k": {
    repo: "NeelNanda/pile-10k",
    files: (p) => p.startsWith("data/train-") && p.endsWith(".parquet"),
    layout: "data/train-*.parquet",
    draw: autoRoundPileWindows,
    describe: "auto-round's pile-10k: the first seqlen tokens of documents of ≥ seqlen tokens",
  },
};

/** "pile-val", "pile-10k" or NAME=PATH: the source it names, else null. */
export function pileSpec(spec: string): { name: string; path?: string } | null {
  const eq = spec.indexOf("=");
  const name = eq < 0 ? spec : spec.slice(0, eq);
  if (!(name in PILE_SOURCES)) return null;
  return eq < 0 ? { name } : { name, path: spec.slice(eq + 1) };
}

export async function loadPile(spec: string, o: LoadOptions): Promise<TextData> {
  const { name, path } = pileSpec(spec)!;
  const src = PILE_SOURCES[name];
  if (o.split === "test") {
    throw new Error(`${name} is a calibration source (${src.repo}), not an evaluation dataset`);
  }
  let files: string[], source: string, shas: string[];
  if (path !== undefined) {
    files = await localFiles(name, path, src);
    source = path;
    shas = await Promise.all(files.map(async (f) => sha256Hex(await Deno.readFile(f))));
  } else {
    const snap = await snapshot(src.repo, {
      type: "dataset",
      revision: src.revision,
      allow: src.files,
      under: src.layout.slice(0, src.layout.lastIndexOf("/")),
      config: o.hub,
      log: o.log,
    });
    const got = snap.files.filter((f) => src.files(f.path)).sort((a, b) => a.path.localeCompare(b.path));
    if (!got.length) throw new Error(`${name}: ${src.repo} has no files ${src.layout}`);
    files = got.map((f) => `${snap.dir}/${f.path}`);
    source = `hf://datasets/${src.repo}@${snap.commit}/${src.layout}`;
    shas = await Promise.all(
      got.map(async (f, i) => f.etag.length === 64 ? f.etag : sha256Hex(await Deno.readFile(files[i]))),
    );
  }
  const docs: string[] = [];
  for (const f of files) docs.push(...await readRows(f, "text"));
  if (!docs.length) throw new Error(`${name}: ${source} has no documents`);
  const sha256 = shas.length === 1 ? shas[0] : await sha256Hex(new TextEncoder().encode(shas.join("\n")));
  return {
    name,
    source,
    sha256,
    calibrationSeed: PILE_SHUFFLE_SEED,
    calibrationDescription: src.describe,
    evalIds: () => {
      throw new Error(`${name} is a calibration source, not an evaluation dataset`);
    },
    calibration: (tok, c) => {
      const w = src.draw(docs, tok, c.nsamples, c.seqlen);
      if (!w.length) throw new Error(`${name}: no calibration window of ${c.seqlen} tokens could be drawn`);
      return w;
    },
  };
}

/** A local file as is, or the files of a folder laid out like the Hub repo. */
async function localFiles(name: string, path: string, src: PileSource): Promise<string[]> {
  const st = await Deno.stat(path).catch(() => null);
  if (!st) throw new Error(`${name}=${path}: no such file or folder`);
  if (st.isFile) return [path];
  const out: string[] = [];
  const walk = async (dir: string, rel: string) => {
    for await (const e of Deno.readDir(dir)) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await walk(`${dir}/${e.name}`, r);
      else if (src.files(r)) out.push(r);
    }
  };
  await walk(path, "");
  if (!out.length) {
    throw new Error(`${name}=${path}: no files ${src.layout} in the folder (the Hub repo's layout)`);
  }
  return out.sort().map((r) => `${path}/${r}`);
}

/** AutoAWQ's get_calib_dataset("pileval", n_samples, max_seq_len) on the shuffled documents. */
export function awqPileWindows(docs: string[], tok: Tok, nsamples: number, seqlen: number): number[][] {
  const all: number[] = [];
  let kept = 0;
  for (const i of numpyPermutation(docs.length, PILE_SHUFFLE_SEED)) {
    const ids = tok.encode(pyStrip(docs[i]));
    if (ids.length > seqlen || ids.length === 0) continue;
    for (const t of ids) all.push(t);
    if (++kept === nsamples) break;
  }
  const n = Math.floor(all.length / seqlen);
  return Array.from({ length: n }, (_, k) => all.slice(k * seqlen, (k + 1) * seqlen));
}

/** auto-round's pile-10k: truncated encodings of exactly seqlen tokens, its repetition filter. */
export function autoRoundPileWindows(docs: string[], tok: Tok, nsamples: number, seqlen: number): number[][] {
  const out: number[][] = [];
  for (const i of numpyPermutation(docs.length, PILE_SHUFFLE_SEED)) {
    const ids = tok.encode(docs[i]).slice(0, seqlen);
    if (ids.length < seqlen) continue;
    const last = ids[ids.length - 1];
    if (seqlen > 2 && ids.filter((t) => t === last).length > Math.floor(seqlen / 2)) continue;
    out.push(ids);
    if (out.length === nsamples) break;
  }
  return out;
}
