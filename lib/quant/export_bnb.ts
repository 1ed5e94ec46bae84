// Checkpoints in bitsandbytes' serialized layouts (as transformers saves Linear4bit / Linear8bitLt),
// and their reader.
//   4-bit, per layer `name`: name.weight uint8 [ceil(numel/2), 1] (even element in the high nibble),
//     name.weight.absmax (fp32, or uint8 codes under double quant), name.weight.quant_map fp32 [16],
//     with double quant name.weight.nested_absmax fp32 and name.weight.nested_quant_map fp32 [256],
//     and name.weight.quant_state.bitsandbytes__<type>: the rest of the quant state as JSON in uint8
//     (quant_type, blocksize, dtype, shape, nested_blocksize, nested_dtype, nested_offset)
//   int8: name.weight int8 [out, in], name.SCB fp32 [out], name.weight_format uint8 (0 = "row")
// config.json's quantization_config: quant_method "bitsandbytes" with load_in_4bit / load_in_8bit.

import type { Gpu } from "../gpu/device.ts";
import type { Checkpoint } from "../io/checkpoint.ts";
import type { BnbQuantConfig } from "../io/config.ts";
import type { TensorToWrite } from "../io/safetensors.ts";
import type { Linear } from "../model/linear.ts";
import { bnb4Linear } from "./bnb.ts";
import { JsonFloat } from "../provenance.ts";
import { writeQuantizedCheckpoint } from "./export.ts";
import { Int8Linear } from "./llm_int8.ts";
import { packBnb4, unpackBnb4 } from "./pack/bnb.ts";
import type { QuantRecord } from "./record.ts";
import type { LayerFormat } from "../model/format.ts";

export async function exportBnb(
  srcDir: string,
  outDir: string,
  records: QuantRecord[],
  int8: { threshold: number } | null,
  metadata: Record<string, string> = {},
): Promise<void> {
  const tensors: TensorToWrite[] = [];
  let qc: Record<string, unknown>;
  if (int8) {
    for (const r of records) {
      const cb = Int8Array.from(r.codes, (c) => c - 128);
      tensors.push(
        { name: `${r.name}.weight`, dtype: "I8", shape: r.shape, data: cb },
        {
          name: `${r.name}.SCB`,
          dtype: "F32",
          shape: [r.shape[0]],
          data: Float32Array.from(r.rowAbsmax!),
        },
        { name: `${r.name}.weight_format`, dtype: "U8", shape: [], data: new Uint8Array([0]) },
      );
    }
    qc = bnbConfig({ load_in_8bit: true, llm_int8_threshold: int8.threshold });
  } else {
    const type = records[0].method as "nf4" | "fp4";
    const dq = records[0].scaleQuant !== undefined;
    for (const r of records) {
      if (r.method !== type || (r.scaleQuant !== undefined) !== dq) {
        throw new Error(`${r.name}: a bitsandbytes export needs one quant type and one double-quant setting`);
      }
      const n = r.codes.length, w = `${r.name}.weight`, sq = r.scaleQuant;
      const state: Record<string, unknown> = {
        quant_type: type,
        blocksize: r.groupSize,
        dtype: "float32",
        shape: r.shape,
      };
      tensors.push(
        { name: w, dtype: "U8", shape: [Math.ceil(n / 2), 1], data: packBnb4(r.codes) },
        { name: `${w}.quant_map`, dtype: "F32", shape: [16], data: Float32Array.from(r.codebook!) },
      );
      if (sq) {
        tensors.push(
          { name: `${w}.absmax`, dtype: "U8", shape: [sq.codes.length], data: Uint8Array.from(sq.codes) },
          {
            name: `${w}.nested_absmax`,
            dtype: "F32",
            shape: [sq.absmax.length],
            data: Float32Array.from(sq.absmax),
          },
          { name: `${w}.nested_quant_map`, dtype: "F32", shape: [256], data: Float32Array.from(sq.codebook) },
        );
        Object.assign(state, {
          nested_blocksize: sq.blockSize,
          nested_dtype: "float32",
          nested_offset: sq.offset,
        });
      } else {
        tensors.push({
          name: `${w}.absmax`,
          dtype: "F32",
          shape: [r.scales.length],
          data: Float32Array.from(r.scales),
        });
      }
      const json = new TextEncoder().encode(pythonJson(state));
      tensors.push({
        name: `${w}.quant_state.bitsandbytes__${type}`,
        dtype: "U8",
        shape: [json.length],
        data: json,
      });
    }
    qc = bnbConfig({ load_in_4bit: true, bnb_4bit_quant_type: type, bnb_4bit_use_double_quant: dq });
  }
  await writeQuantizedCheckpoint(srcDir, outDir, records.map((r) => r.name), tensors, qc, {}, metadata);
}

/**
 * transformers' BitsAndBytesConfig.to_dict(), every field with the type its dataclass checks
 * (llm_int8_threshold a float literal: an integer is refused), defaults as transformers writes them.
 */
function bnbConfig(set: {
  load_in_8bit?: boolean;
  load_in_4bit?: boolean;
  llm_int8_threshold?: number;
  bnb_4bit_quant_type?: string;
  bnb_4bit_use_double_quant?: boolean;
}): Record<string, unknown> {
  const c = {
    load_in_4bit: false,
    load_in_8bit: false,
    llm_int8_threshold: 6.0,
    bnb_4bit_quant_type: "fp4",
    bnb_4bit_use_double_quant: false,
    ...set,
  };
  return {
    _load_in_4bit: c.load_in_4bit,
    _load_in_8bit: c.load_in_8bit,
    bnb_4bit_compute_dtype: "float32",
    bnb_4bit_quant_storage: "uint8",
    bnb_4bit_quant_type: c.bnb_4bit_quant_type,
    bnb_4bit_use_double_quant: c.bnb_4bit_use_double_quant,
    llm_int8_enable_fp32_cpu_offload: false,
    llm_int8_has_fp16_weight: false,
    llm_int8_skip_modules: null,
    llm_int8_threshold: new JsonFloat(c.llm_int8_threshold),
    load_in_4bit: c.load_in_4bit,
    load_in_8bit: c.load_in_8bit,
    quant_method: "bitsandbytes",
  };
}

/** json.dumps' default separators (", " and ": "), as bitsandbytes writes its quant state. */
function pythonJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(pythonJson).join(", ")}]`;
  if (v && typeof v === "object") {
    return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${pythonJson(x)}`).join(", ")}}`;
  }
  return JSON.stringify(v);
}

/** One layer of a bitsandbytes checkpoint, as the run-time layer it becomes. */
export async function readBnbLayer(
  gpu: Gpu,
  ckpt: Checkpoint,
  name: string,
  shape: [number, number],
  q: BnbQuantConfig,
  bias?: Float32Array,
): Promise<Linear> {
  const [out, inp] = shape, w = `${name}.weight`;
  const raw = async (t: string, dtype: string, want?: number[]) => {
    if (!ckpt.has(t)) throw new Error(`${ckpt.dir}: bitsandbytes checkpoint has no tensor ${t}`);
    const info = ckpt.info(t);
    if (info.dtype !== dtype || (want && info.shape.join() !== want.join())) {
      throw new Error(
        `${ckpt.dir}: ${t} is ${info.dtype} [${info.shape}], expected ${dtype}${want ? ` [${want}]` : ""}`,
      );
    }
    return await ckpt.readBytes(t);
  };
  if (q.load_in_8bit) {
    const cb = new Int8Array((await raw(w, "I8", shape)).buffer);
    const scb = new Float32Array((await raw(`${name}.SCB`, "F32", [out])).buffer);
    return Int8Linear.fromWeight(gpu, name, cb, scb, shape, q.llm_int8_threshold ?? 6.0, bias);
  }
  const type = q.bnb_4bit_quant_type ?? "fp4";
  const state = JSON.parse(
    new TextDecoder().decode(await raw(`${w}.quant_state.bitsandbytes__${type}`, "U8")),
  );
  if (state.shape?.join() !== shape.join()) {
    throw new Error(`${ckpt.dir}: ${name}: quant_state shape [${state.shape}] is not [${shape}]`);
  }
  const n = out * inp, bs = state.blocksize as number, blocks = Math.ceil(n / bs);
  const codes = unpackBnb4(await raw(w, "U8", [Math.ceil(n / 2), 1]), n);
  const codebook = new Float32Array((await raw(`${w}.quant_map`, "F32", [16])).buffer);
  let scales: Float32Array;
  if (state.nested_blocksize) {
    const qa = await raw(`${w}.absmax`, "U8", [blocks]);
    const nb = state.nested_blocksize as number;
    const nested = new Float32Array(
      (await raw(`${w}.nested_absmax`, "F32", [Math.ceil(blocks / nb)])).buffer,
    );
    const map = new Float32Array((await raw(`${w}.nested_quant_map`, "F32", [256])).buffer);
    const f = Math.fround;
    scales = Float32Array.from(qa, (c, i) => f(f(map[c] * nested[Math.floor(i / nb)]) + state.nested_offset));
  } else {
    scales = new Float32Array((await raw(`${w}.absmax`, "F32", [blocks])).buffer);
  }
  const r: QuantRecord = {
    name,
    shape,
    dtype: "float32",
    bits: 4,
    groupSize: bs,
    axis: 1,
    codes,
    scales,
    zeros: null,
    codebook,
    bias,
    method: type,
  };
  return bnb4Linear(gpu, r);
}

/** bitsandbytes' serialized layouts (4-bit and int8), for the model loader. */
export const BNB_FORMAT: LayerFormat = {
  quantMethods: ["bitsandbytes"],
  tensors: (q) =>
    (q as BnbQuantConfig).load_in_8bit ? ["weight", "SCB"] : ["weight", "weight.quant_map", "weight.absmax"],
  packed: (ckpt, name) => ckpt.has(`${name}.SCB`) || ckpt.has(`${name}.weight.quant_map`),
  read: (gpu, ckpt, name, shape, q, bias) => readBnbLayer(gpu, ckpt, name, shape, q as BnbQuantConfig, bias),
  row: (q) => {
    const b = q as BnbQuantConfig;
    return {
      method: b.load_in_8bit ? "bnb-int8" : b.bnb_4bit_quant_type ?? "fp4",
      bits: b.load_in_8bit ? 8 : 4,
      group_size: null,
    };
  },
};
