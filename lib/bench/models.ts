// --model values: a local folder (used as-is) or a Hub repo id (downloaded into the HF cache, only
// the files quantlab reads: config, tokenizer, and the weights with their index — safetensors
// when the repo has them, else PyTorch .bin, never both).

import { isRepoId, snapshot } from "../hub/hub.ts";

export interface ResolvedModel {
  spec: string;
  dir: string;
  /** The Hub commit (null for a local folder). */
  revision: string | null;
  /** Files with their sizes and, from the Hub, their hashes (sha256 for weights). */
  files: { path: string; size: number; etag?: string }[];
}

const WANTED =
  /^(config\.json|generation_config\.json|tokenizer\.json|tokenizer_config\.json|special_tokens_map\.json|vocab\.json|merges\.txt|model(-\d+-of-\d+)?\.safetensors|model\.safetensors\.index\.json|pytorch_model(-\d+-of-\d+)?\.bin|pytorch_model\.bin\.index\.json|qmodel\.pt)$/;

const isBin = (p: string) => /^pytorch_model.*\.(bin|bin\.index\.json)$/.test(p);

/**
 * Safetensors weights when the repo has any (as transformers prefers them), else the .bin ones,
 * else hqq's own qmodel.pt (Checkpoint.open's order).
 */
export function chooseWeights(paths: string[]): string[] {
  const st = paths.some((p) => p.endsWith(".safetensors"));
  const bin = paths.some((p) => isBin(p));
  return paths.filter((p) => (st ? !isBin(p) && p !== "qmodel.pt" : bin ? p !== "qmodel.pt" : true));
}

export async function resolveModel(spec: string, log?: (s: string) => void): Promise<ResolvedModel> {
  const stat = await Deno.stat(spec).catch(() => null);
  if (stat?.isDirectory) {
    const files = [];
    const names: string[] = [];
    for await (const e of Deno.readDir(spec)) if (WANTED.test(e.name)) names.push(e.name);
    for (const n of chooseWeights(names)) {
      files.push({ path: n, size: (await Deno.stat(`${spec}/${n}`)).size });
    }
    files.sort((a, b) => a.path.localeCompare(b.path));
    return { spec, dir: spec, revision: null, files };
  }
  if (stat) throw new Error(`--model ${spec}: a file, not a model folder`);
  if (!isRepoId(spec.split("@")[0])) {
    throw new Error(`--model ${spec}: no such folder, and not a Hub repo id (owner/name)`);
  }
  const [repo, revision] = spec.split("@");
  log?.(`model ${spec}: resolving on the Hub`);
  const snap = await snapshot(repo, { revision, allow: (p) => WANTED.test(p), choose: chooseWeights, log });
  if (!snap.files.some((f) => /\.(safetensors|bin|pt)$/.test(f.path))) {
    throw new Error(
      `--model ${spec}: the repo has no weights at ${snap.commit} (no *.safetensors, pytorch_model*.bin or qmodel.pt)`,
    );
  }
  return { spec, dir: snap.dir, revision: snap.commit, files: snap.files };
}
