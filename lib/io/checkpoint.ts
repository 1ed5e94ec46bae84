// A Hugging Face checkpoint directory: config.json, tokenizer files, and weights in one of the two
// layouts the Hub serves — safetensors (model.safetensors, or shards listed by
// model.safetensors.index.json) or PyTorch (pytorch_model.bin, or shards listed by
// pytorch_model.bin.index.json), or hqq's qmodel.pt. Safetensors win when both are present, as in
// transformers.
// Whatever the source, callers see one API: names, dtype and shape, contiguous bytes read from the
// file by offset when asked for, and float weights as f32 with NaN/Inf refused (file and tensor
// named).

import { z } from "zod";
import { bf16ToF32, f16ToF32 } from "../gpu/tensor.ts";
import { type SafeDType, SafetensorsError, SafetensorsFile } from "./safetensors.ts";
import { TorchFile, type TorchValue } from "./torch_bin.ts";

const IndexJson = z.object({ weight_map: z.record(z.string(), z.string()) });

/** What both file formats offer. */
export interface TensorFile {
  readonly path: string;
  names(): string[];
  info(name: string): { dtype: SafeDType; shape: number[] };
  /** One tensor's bytes, contiguous, in its own dtype (a fresh, aligned buffer). */
  readBytes(name: string): Promise<Uint8Array<ArrayBuffer>>;
}

export type CheckpointFormat = "safetensors" | "pytorch";

const LAYOUTS: { format: CheckpointFormat; single: string; index: string }[] = [
  { format: "safetensors", single: "model.safetensors", index: "model.safetensors.index.json" },
  { format: "pytorch", single: "pytorch_model.bin", index: "pytorch_model.bin.index.json" },
  // hqq's own writer (AutoHQQHFModel.save_quantized): one torch.save of {module: state dict}.
  { format: "pytorch", single: "qmodel.pt", index: "" },
];

const openFile = (format: CheckpointFormat, path: string): Promise<TensorFile> =>
  format === "safetensors" ? SafetensorsFile.open(path) : TorchFile.open(path);

export class Checkpoint {
  private constructor(
    readonly dir: string,
    readonly format: CheckpointFormat,
    private files: Map<string, TensorFile>,
  ) {}

  static async open(dir: string): Promise<Checkpoint> {
    for (const { format, single, index } of LAYOUTS) {
      const indexPath = `${dir}/${index}`;
      const files = new Map<string, TensorFile>();
      if (index && await exists(indexPath)) {
        let raw: unknown;
        try {
          raw = JSON.parse(await Deno.readTextFile(indexPath));
        } catch (e) {
          throw new Error(`${indexPath}: not valid JSON (${(e as Error).message})`);
        }
        const parsed = IndexJson.safeParse(raw);
        if (!parsed.success) throw new Error(`${indexPath}: not a checkpoint index (no weight_map)`);
        const shards = new Map<string, TensorFile>();
        for (const shard of new Set(Object.values(parsed.data.weight_map))) {
          if (shard.includes("/") || shard.includes("..")) {
            throw new Error(`${indexPath}: bad shard name ${shard}`);
          }
          if (!(await exists(`${dir}/${shard}`))) {
            throw new Error(`${indexPath}: names shard ${shard}, which is not in ${dir}`);
          }
          shards.set(shard, await openFile(format, `${dir}/${shard}`));
        }
        for (const [name, shard] of Object.entries(parsed.data.weight_map)) {
          const f = shards.get(shard)!;
          if (!f.names().includes(name)) {
            throw new SafetensorsError(
              f.path,
              `the index lists tensor ${name} here, but the file has no such tensor`,
            );
          }
          files.set(name, f);
        }
      } else if (await exists(`${dir}/${single}`)) {
        const f = await openFile(format, `${dir}/${single}`);
        for (const name of f.names()) files.set(name, f);
      } else continue;
      return new Checkpoint(dir, format, files);
    }
    throw new Error(
      `${dir}: no weights (looked for ${
        LAYOUTS.flatMap((l) => [l.single, l.index]).filter(Boolean).join(", ")
      })`,
    );
  }

  names(): string[] {
    return [...this.files.keys()];
  }

  /** A plain value stored beside the tensors (only torch pickles have them: hqq's meta records). */
  value(name: string): TorchValue | undefined {
    for (const f of new Set(this.files.values())) {
      if (f instanceof TorchFile && f.values().has(name)) return f.values().get(name);
    }
    return undefined;
  }

  has(name: string): boolean {
    return this.files.has(name);
  }

  /** The file holding a tensor (for error messages). */
  fileOf(name: string): TensorFile {
    const f = this.files.get(name);
    if (!f) throw new Error(`${this.dir}: checkpoint has no tensor ${name}`);
    return f;
  }

  info(name: string): { dtype: SafeDType; shape: number[] } {
    return this.fileOf(name).info(name);
  }

  readBytes(name: string): Promise<Uint8Array<ArrayBuffer>> {
    return this.fileOf(name).readBytes(name);
  }

  #checkShape(f: TensorFile, name: string, shape?: number[]) {
    const t = f.info(name);
    if (shape && (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))) {
      throw new SafetensorsError(
        f.path,
        `tensor ${name} has shape [${t.shape}], but config.json implies [${shape}]`,
      );
    }
    return t;
  }

  /** A float tensor as f32, checked for NaN/Inf and (when given) for its expected shape. */
  async readF32(name: string, shape?: number[]): Promise<Float32Array<ArrayBuffer>> {
    const f = this.fileOf(name);
    const t = this.#checkShape(f, name, shape);
    const bytes = await f.readBytes(name);
    let out: Float32Array<ArrayBuffer>;
    if (t.dtype === "F32") out = new Float32Array(bytes.buffer);
    else if (t.dtype === "F16") out = f16ToF32(new Uint16Array(bytes.buffer));
    else if (t.dtype === "BF16") out = bf16ToF32(new Uint16Array(bytes.buffer));
    else if (t.dtype === "F64") out = Float32Array.from(new Float64Array(bytes.buffer));
    else {
      throw new SafetensorsError(
        f.path,
        `unsupported dtype ${t.dtype} in tensor ${name} (FP weights are read as F32, F16, BF16 or F64)`,
      );
    }
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

  /**
   * A float tensor in the dtype it is stored in: F16/BF16 as their 16-bit patterns (2 bytes per
   * value on the GPU too), F32/F64 as f32. Checked for NaN/Inf and shape like readF32.
   */
  async readNative(name: string, shape?: number[]): Promise<NativeFloat> {
    const f = this.fileOf(name);
    const t = this.#checkShape(f, name, shape);
    if (t.dtype !== "F16" && t.dtype !== "BF16") {
      return { dtype: "f32", data: await this.readF32(name, shape) };
    }
    const bits = new Uint16Array((await f.readBytes(name)).buffer);
    const exp = t.dtype === "F16" ? 0x7c00 : 0x7f80; // all-ones exponent: Inf or NaN
    for (let i = 0; i < bits.length; i++) {
      if ((bits[i] & exp) === exp) {
        const v = (t.dtype === "F16" ? f16ToF32 : bf16ToF32)(bits.subarray(i, i + 1))[0];
        throw new SafetensorsError(f.path, `tensor ${name} has a non-finite value (${v}) at flat index ${i}`);
      }
    }
    return { dtype: t.dtype === "F16" ? "f16" : "bf16", data: bits };
  }
}

export type NativeFloat =
  | { dtype: "f32"; data: Float32Array<ArrayBuffer> }
  | { dtype: "f16" | "bf16"; data: Uint16Array<ArrayBuffer> };

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}
