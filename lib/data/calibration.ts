// Calibration windows as the reference implementations draw them from a tokenized text
// (GPTQ's get_wikitext2 / get_ptb, and AutoRound/AWQ style random windows): Python's
// random.seed(seed), then for each sample i = randint(0, tokens − seqlen − 1), window [i, i + seqlen).

import { readEvalText } from "../eval/text.ts";
import { PyRandom } from "./pyrandom.ts";

export interface CalibrationOptions {
  nsamples: number;
  seqlen: number;
  seed: number;
}

/** Start offsets of the windows (the text's token count is all that matters). */
export function calibrationStarts(tokens: number, o: CalibrationOptions): number[] {
  if (!(Number.isInteger(o.nsamples) && o.nsamples >= 1)) {
    throw new Error(`calibration: nsamples must be ≥ 1, got ${o.nsamples}`);
  }
  if (!(Number.isInteger(o.seqlen) && o.seqlen >= 2)) {
    throw new Error(`calibration: seqlen must be ≥ 2, got ${o.seqlen}`);
  }
  if (tokens < o.seqlen + 1) {
    throw new Error(`calibration: the text has ${tokens} tokens, too few for windows of ${o.seqlen}`);
  }
  const r = new PyRandom(o.seed);
  return Array.from({ length: o.nsamples }, () => r.randint(0, tokens - o.seqlen - 1));
}

/** The windows themselves: nsamples × seqlen token ids. */
export function calibrationWindows(ids: ArrayLike<number>, o: CalibrationOptions): number[][] {
  return calibrationStarts(ids.length, o).map((i) => Array.from({ length: o.seqlen }, (_, t) => ids[i + t]));
}

export interface Calibration {
  file: string;
  sha256: string;
  windows: number[][];
  /** Tokens of the whole text. */
  tokens: number;
  /** The seed the windows were drawn with, when not --seed (the Pile sources' shuffle: 42). */
  seed?: number;
}

/** Tokenize a calibration text (one BOS at the start, as the evaluation does) and draw the windows. */
export async function loadCalibration(
  tok: { encode(text: string): number[] },
  file: string,
  o: CalibrationOptions,
): Promise<Calibration> {
  let text;
  try {
    text = await readEvalText(file);
  } catch (e) {
    throw new Error(`calibration text ${(e as Error).message.replace(/^dataset /, "")}`);
  }
  const ids = tok.encode(text.text);
  try {
    return { file, sha256: text.sha256, windows: calibrationWindows(ids, o), tokens: ids.length };
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
}
