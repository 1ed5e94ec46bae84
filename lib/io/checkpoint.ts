// A Hugging Face checkpoint directory: config.json, tokenizer.json, and weights in
// model.safetensors or shards listed by model.safetensors.index.json. Tensors are read one at a
// time from their file; float weights become f32 with NaN/Inf refused, naming file and tensor.

import { z } from "zod";
import { bf16ToF32, f16ToF32 } from "../gpu/tensor.ts";
import { SafetensorsError, SafetensorsFile, type TensorInfo } from "./safetensors.ts";

const IndexJson = z.object({ weight_map: z.record(z.string(), z.string()) });

export class Checkpoint {
  private constructor(readonly dir: string, private files: Map<string, SafetensorsFile>) {}

  static async open(dir: string): Promise<Checkpoint> {
    const indexPath = `${dir}/model.safetensors.index.json`;
    const files = new Map<string, SafetensorsFile>();
    if (await exists(indexPath)) {
      const parsed = IndexJson.safeParse(JSON.parse(await Deno.readTextFile(indexPath)));
      if (!parsed.success) throw new Error(`${indexPath}: not a safetensors index (no weight_map)`);
      const shards = new Map<string, SafetensorsFile>();
      for (const shard of new Set(Object.values(parsed.data.weight_map))) {
        if (shard.includes("/") || shard.includes("..")) {
          throw new Error(`${indexPath}: bad shard name ${shard}`);
        }
        shards.set(shard, await SafetensorsFile.open(`${dir}/${shard}`));
      }
      for (const [name, shard] of Object.entries(parsed.data.weight_map)) {
        const f = shards.get(shard)!;
        if (!f.header.tensors.has(name)) {
          throw new SafetensorsError(
            f.path,
            `the index lists tensor ${name} here, but the file has no such tensor`,
          );
        }
        files.set(name, f);
      }
    } else if (await exists(`${dir}/model.safetensors`)) {
      const f = await SafetensorsFile.open(`${dir}/model.safetensors`);
      for (const name of f.names()) files.set(name, f);
    } else {
      throw new Error(
        `${dir}: no model.safetensors or model.safetensors.index.json (only safetensors checkpoints are read)`,
      );
    }
    return new Checkpoint(dir, files);
  }

  names(): string[] {
    return [...this.files.keys()];
  }

  has(name: string): boolean {
    return this.files.has(name);
  }

  fileOf(name: string): SafetensorsFile {
    const f = this.files.get(name);
    if (!f) throw new Error(`${this.dir}: checkpoint has no tensor ${name}`);
    return f;
  }

  info(name: string): TensorInfo {
    return this.fileOf(name).info(name);
  }

  /** A float tensor as f32, checked for NaN/Inf and (when given) for its expected shape. */
  async readF32(name: string, shape?: number[]): Promise<Float32Array<ArrayBuffer>> {
    const f = this.fileOf(name);
    const t = f.info(name);
    if (shape && (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))) {
      throw new SafetensorsError(
        f.path,
        `tensor ${name} has shape [${t.shape}], but config.json implies [${shape}]`,
      );
    }
    const bytes = await f.readBytes(name);
    let out: Float32Array<ArrayBuffer>;
    if (t.dtype === "F32") out = new Float32Array(bytes.buffer);
    else if (t.dtype === "F16") out = f16ToF32(new Uint16Array(bytes.buffer));
    else if (t.dtype === "BF16") out = bf16ToF32(new Uint16Array(bytes.buffer));
    else if (t.dtype === "F64") out = Float32Array.from(new Float64Array(bytes.buffer));
    else throw new SafetensorsError(f.path, `tensor ${name} is ${t.dtype}, expected a float dtype`);
    for (let i = 0; i < out.length; i++) {
      if (!Number.isFinite(out[i])) {
        throw new SafetensorsError(
          f.path,
          `tensor ${name} has a non-finite value (${out[i]}) at flat index ${i}`,
        );
      }
    }
    return out;
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}
