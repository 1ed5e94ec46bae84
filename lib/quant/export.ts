// What every quantized-checkpoint exporter shares: the source checkpoint's other tensors copied
// untouched (a quantized layer's `.weight` is replaced, its `.bias` kept unless `tensors` holds
// a new one under the same name), config.json with
// `quantization_config`, the tokenizer files, all written under a temporary name and renamed into
// place when complete — a failed export leaves no partial checkpoint.

import { dirname } from "node:path";
import { Checkpoint } from "../io/checkpoint.ts";
import { type TensorToWrite, writeSafetensors } from "../io/safetensors.ts";
import { writeJsonAtomic } from "../provenance.ts";

const SIDE_FILES = [
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "generation_config.json",
  "tokenizer.model",
];

export async function writeQuantizedCheckpoint(
  srcDir: string,
  outDir: string,
  quantized: string[],
  tensors: TensorToWrite[],
  quantizationConfig: Record<string, unknown>,
  extraJson: Record<string, unknown> = {},
  metadata: Record<string, string> = {},
): Promise<void> {
  const src = await Checkpoint.open(srcDir);
  const replaced = new Set(quantized.map((n) => `${n}.weight`));
  // A quantized head of a tied model (--quantize-head) gets its own tensors: the export is untied.
  const untie = replaced.has("lm_head.weight") && !src.has("lm_head.weight");
  for (const n of replaced) {
    if (!src.has(n) && !(untie && n === "lm_head.weight")) {
      throw new Error(`${srcDir}: checkpoint has no tensor ${n}`);
    }
  }
  // A tensor given under a source tensor's name replaces it (AWQ's folded norms and biases).
  for (const t of tensors) replaced.add(t.name);
  const all = [...tensors];
  for (const name of src.names()) {
    if (replaced.has(name)) continue;
    const info = src.info(name);
    all.push({ name, dtype: info.dtype, shape: info.shape, data: await src.readBytes(name) });
  }
  const config = JSON.parse(await Deno.readTextFile(`${srcDir}/config.json`));
  if (untie) config.tie_word_embeddings = false;
  const tmp = `${outDir}.partial-${Deno.pid}`;
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  // Folders this export creates above the checkpoint (--export DIR itself, when new) go too if it fails.
  const created: string[] = [];
  for (let d = dirname(tmp); !(await Deno.stat(d).then(() => true, () => false)); d = dirname(d)) {
    created.push(d);
  }
  await Deno.mkdir(tmp, { recursive: true });
  try {
    await writeSafetensors(`${tmp}/model.safetensors`, all, { format: "pt", ...metadata });
    await writeJsonAtomic(`${tmp}/config.json`, { ...config, quantization_config: quantizationConfig });
    for (const [file, value] of Object.entries(extraJson)) await writeJsonAtomic(`${tmp}/${file}`, value);
    for (const f of SIDE_FILES) {
      try {
        await Deno.copyFile(`${srcDir}/${f}`, `${tmp}/${f}`);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
    const old = `${outDir}.old-${Deno.pid}`;
    const had = await Deno.rename(outDir, old).then(() => true, () => false);
    await Deno.rename(tmp, outDir);
    if (had) await Deno.remove(old, { recursive: true });
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    for (const d of created) await Deno.remove(d).catch(() => {}); // only while empty
    throw new Error(`writing the export ${outDir}: ${(e as Error).message}`);
  }
}

/**
 * The bytes of `name`.`suffix` in a quantized checkpoint, checked to exist with `dtype` and shape
 * `want`; errors name the directory, the tensor, and `context` (the settings that imply the shape).
 */
export async function readCheckedTensor(
  ckpt: Checkpoint,
  method: string,
  name: string,
  suffix: string,
  dtype: string,
  want: number[],
  context: string,
): Promise<Uint8Array<ArrayBuffer>> {
  const t = `${name}.${suffix}`;
  if (!ckpt.has(t)) throw new Error(`${ckpt.dir}: ${method} checkpoint has no tensor ${t}`);
  const info = ckpt.info(t);
  if (info.dtype !== dtype || info.shape.join() !== want.join()) {
    throw new Error(
      `${ckpt.dir}: ${t} is ${info.dtype} [${info.shape}], expected ${dtype} [${want}] (${context})`,
    );
  }
  return await ckpt.readBytes(t);
}
