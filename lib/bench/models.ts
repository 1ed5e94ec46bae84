// --model values: a local folder (used as-is) or a Hub repo id (downloaded into the HF cache, only
// the files quantlab reads: config, tokenizer, safetensors weights and their index).

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
  /^(config\.json|generation_config\.json|tokenizer\.json|tokenizer_config\.json|special_tokens_map\.json|vocab\.json|merges\.txt|[^/]*\.safetensors|model\.safetensors\.index\.json)$/;

export async function resolveModel(spec: string, log?: (s: string) => void): Promise<ResolvedModel> {
  const stat = await Deno.stat(spec).catch(() => null);
  if (stat?.isDirectory) {
    const files = [];
    for await (const e of Deno.readDir(spec)) {
      if (WANTED.test(e.name)) {
        files.push({ path: e.name, size: (await Deno.stat(`${spec}/${e.name}`)).size });
      }
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
  const snap = await snapshot(repo, { revision, allow: (p) => WANTED.test(p), log });
  if (!snap.files.some((f) => f.path.endsWith(".safetensors"))) {
    throw new Error(
      `--model ${spec}: the repo has no *.safetensors weights at ${snap.commit} (quantlab reads safetensors only)`,
    );
  }
  return { spec, dir: snap.dir, revision: snap.commit, files: snap.files };
}
