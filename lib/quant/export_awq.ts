// An AutoAWQ GEMM checkpoint directory from AWQ records, and the reader that loads one back.
// Layout (methods.md, pack/awq.ts): for every quantized linear `name`,
//   name.qweight int32 [in, out/8], name.qzeros int32 [G, out/8] (nibbles in [0,2,4,6,1,3,5,7]
//   order, zeros as-is), name.scales f16 [G, out]; config.json's quantization_config
//   {quant_method "awq", bits 4, group_size, zero_point true, version "gemm"} and AutoAWQ's
//   quant_config.json beside it.
// AWQ changes FP tensors too: the norms that absorbed 1/s (and a previous linear's bias) are
// written as float32 under their own names, replacing the source's. Everything is packed and
// checked before anything is written; the directory appears complete or not at all (export.ts).

import { Checkpoint } from "../io/checkpoint.ts";
import type { AwqQuantConfig } from "../io/config.ts";
import type { TensorToWrite } from "../io/safetensors.ts";
import { f16ToF32, f32ToF16 } from "../gpu/tensor.ts";
import { readCheckedTensor, writeQuantizedCheckpoint } from "./export.ts";
import { type AwqTensors, packAwq, unpackAwq } from "./pack/awq.ts";
import type { QuantRecord } from "./record.ts";
import type { LayerFormat } from "../model/format.ts";
import { QuantLinear } from "./quant_linear.ts";

export async function exportAwq(
  srcDir: string,
  outDir: string,
  records: QuantRecord[],
  folded: Map<string, Float32Array>,
  metadata: Record<string, string> = {},
): Promise<void> {
  if (records.length === 0) throw new Error("AWQ export: no quantized layers");
  const g = records[0].groupSize;
  const tensors: TensorToWrite[] = [];
  for (const r of records) {
    if (r.groupSize !== g && r.groupSize !== r.shape[1]) {
      throw new Error(`AWQ export: ${r.name} has group size ${r.groupSize}, the others ${g}`);
    }
    const [out, inp] = r.shape, G = inp / r.groupSize;
    const t = packAwq(r); // throws naming the layer: 4-bit only, out-features divisible by 8
    tensors.push(
      { name: `${r.name}.qweight`, dtype: "I32", shape: [inp, out / 8], data: t.qweight },
      { name: `${r.name}.qzeros`, dtype: "I32", shape: [G, out / 8], data: t.qzeros },
      { name: `${r.name}.scales`, dtype: "F16", shape: [G, out], data: f32ToF16(t.scales) },
    );
    if (r.bias) {
      tensors.push({ name: `${r.name}.bias`, dtype: "F32", shape: [out], data: Float32Array.from(r.bias) });
    }
  }
  for (const [name, data] of folded) {
    tensors.push({ name, dtype: "F32", shape: [data.length], data: Float32Array.from(data) });
  }
  const perChannel = records.every((r) => r.groupSize === r.shape[1]) &&
    records.some((r) => r.shape[1] !== g);
  const groupSize = perChannel ? -1 : g;
  const qc = {
    quant_method: "awq",
    bits: 4,
    group_size: groupSize,
    zero_point: true,
    version: "gemm",
    modules_to_not_convert: null,
  };
  await writeQuantizedCheckpoint(srcDir, outDir, records.map((r) => r.name), tensors, qc, {
    "quant_config.json": { zero_point: true, q_group_size: groupSize, w_bit: 4, version: "GEMM" },
  }, metadata);
}

/** One quantized layer of an AutoAWQ GEMM checkpoint as a record. */
export async function readAwqLayer(
  ckpt: Checkpoint,
  name: string,
  shape: [number, number],
  q: AwqQuantConfig,
): Promise<QuantRecord> {
  const [out, inp] = shape;
  const g = q.group_size === -1 ? inp : q.group_size;
  if (inp % g || out % 8) {
    throw new Error(
      `${ckpt.dir}: ${name}: layer [${shape}] does not fit AWQ GEMM groups of ${g} and packs of 8`,
    );
  }
  const G = inp / g;
  const raw = (suffix: string, dtype: string, want: number[]) =>
    readCheckedTensor(ckpt, "AWQ", name, suffix, dtype, want, `group size ${q.group_size}, layer [${shape}]`);
  const t: AwqTensors = {
    qweight: new Int32Array((await raw("qweight", "I32", [inp, out / 8])).buffer),
    qzeros: new Int32Array((await raw("qzeros", "I32", [G, out / 8])).buffer),
    scales: f16ToF32(new Uint16Array((await raw("scales", "F16", [G, out])).buffer)),
  };
  for (const v of t.scales) {
    if (!Number.isFinite(v)) throw new Error(`${ckpt.dir}: ${name}.scales holds ${v}`);
  }
  return unpackAwq(name, t, shape, g);
}

/** AutoAWQ GEMM checkpoints, for the model loader. */
export const AWQ_FORMAT: LayerFormat = {
  quantMethods: ["awq"],
  tensors: () => ["qweight", "qzeros", "scales"],
  packed: (ckpt, name) => ckpt.has(`${name}.qweight`),
  async read(gpu, ckpt, name, shape, q, bias) {
    const r = await readAwqLayer(ckpt, name, shape, q as AwqQuantConfig);
    r.bias = bias;
    return QuantLinear.fromRecord(gpu, r);
  },
  row: (q) => ({
    method: "awq",
    bits: (q as AwqQuantConfig).bits,
    group_size: (q as AwqQuantConfig).group_size,
  }),
};
