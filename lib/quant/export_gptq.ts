// An AutoGPTQ "gptq" (v1) checkpoint directory from GPTQ records, and the reader that loads one
// back. Layout (methods.md): for every quantized linear `name`,
//   name.qweight int32 [in·b/32, out], name.qzeros int32 [G, out·b/32] (zero − 1), name.scales f16
//   [G, out], name.g_idx int32 [in], name.bias as in the source; every other tensor untouched;
//   config.json with quantization_config, and quantize_config.json beside it.
// Written through export.ts: the directory appears complete or not at all.

import { Checkpoint } from "../io/checkpoint.ts";
import type { GptqQuantConfig } from "../io/config.ts";
import type { TensorToWrite } from "../io/safetensors.ts";
import { f16ToF32, f32ToF16 } from "../gpu/tensor.ts";
import { readCheckedTensor, writeQuantizedCheckpoint } from "./export.ts";
import { type GptqTensors, packGptq, unpackGptq } from "./pack/gptq.ts";
import type { QuantRecord } from "./record.ts";
import type { LayerFormat } from "../model/format.ts";
import { QuantLinear } from "./quant_linear.ts";

export interface GptqExportSettings {
  bits: number;
  groupSize: number;
  sym: boolean;
  actOrder: boolean;
  staticGroups: boolean;
  percdamp: number;
  trueSequential: boolean;
}

/**
 * Write `outDir` from the source checkpoint `srcDir` with `records` replacing their layers' weights
 * and `folded` replacing FP tensors by name (norms an AWQ scaling changed, in awq+gptq).
 */
export async function exportGptq(
  srcDir: string,
  outDir: string,
  records: QuantRecord[],
  s: GptqExportSettings,
  metadata: Record<string, string> = {},
  folded: Map<string, Float32Array> = new Map(),
): Promise<void> {
  const qc = {
    bits: s.bits,
    group_size: s.groupSize,
    damp_percent: s.percdamp,
    desc_act: s.actOrder,
    static_groups: s.staticGroups,
    sym: s.sym,
    true_sequential: s.trueSequential,
    model_file_base_name: "model",
    model_name_or_path: null,
    quant_method: "gptq",
    checkpoint_format: "gptq",
  };
  await writeGptqLayout(srcDir, outDir, records, qc, { "quantize_config.json": qc }, metadata, folded);
}

export interface AutoRoundExportSettings {
  bits: number;
  groupSize: number;
  sym: boolean;
  iters: number;
  lr: number;
  nsamples: number;
  seqlen: number;
}

/**
 * auto-round's own format as it writes symmetric int models (packing_format
 * "auto_round:auto_gptq"): the GPTQ v1 tensors, quant_method "auto-round" in config.json, and
 * quantization_config.json beside it. Full-range symmetric scales may be negative; zeros are 2^(b−1).
 */
export async function exportAutoRound(
  srcDir: string,
  outDir: string,
  records: QuantRecord[],
  s: AutoRoundExportSettings,
  metadata: Record<string, string> = {},
  folded: Map<string, Float32Array> = new Map(),
): Promise<void> {
  const qc = {
    bits: s.bits,
    group_size: s.groupSize,
    sym: s.sym,
    data_type: "int",
    iters: s.iters,
    lr: s.lr,
    minmax_lr: s.lr,
    nsamples: s.nsamples,
    seqlen: s.seqlen,
    batch_size: 8,
    // Where auto-round's loader finds the blocks, and its default of feeding each block the
    // quantized blocks' outputs (our calibration chain "quantized-prefix" is that).
    block_name_to_quantize: blockPrefix(records),
    enable_quanted_input: true,
    quant_method: "auto-round",
    packing_format: "auto_round:auto_gptq",
  };
  // auto-round's format has no g_idx (its groups are always in order).
  await writeGptqLayout(
    srcDir,
    outDir,
    records,
    qc,
    { "quantization_config.json": qc },
    metadata,
    folded,
    false,
  );
}

/** "model.layers" of "model.layers.3.mlp.up_proj": the module list holding the decoder blocks. */
function blockPrefix(records: QuantRecord[]): string {
  const m = /^(.*?)\.\d+\./.exec(records[0]?.name ?? "");
  return m ? m[1] : "model.layers";
}

async function writeGptqLayout(
  srcDir: string,
  outDir: string,
  records: QuantRecord[],
  qc: Record<string, unknown>,
  extra: Record<string, unknown>,
  metadata: Record<string, string>,
  folded: Map<string, Float32Array>,
  gIdx = true,
): Promise<void> {
  const wraps = v1ZeroWraps(records);
  if (wraps.length) {
    throw new Error(
      `${wraps.slice(0, 3).join(", ")}${wraps.length > 3 ? ` and ${wraps.length - 3} more layers` : ""}: ` +
        "a zero-point of 0, which GPTQ v1 stores as 0 − 1 (all ones): GPTQModel's v1 → v2 conversion " +
        "adds 1 to every stored zero and would overflow it; nothing written",
    );
  }
  const tensors: TensorToWrite[] = [];
  for (const r of records) {
    const [out, inp] = r.shape, G = inp / r.groupSize;
    const t = packGptq(r);
    tensors.push(
      { name: `${r.name}.qweight`, dtype: "I32", shape: [(inp * r.bits) / 32, out], data: t.qweight },
      { name: `${r.name}.qzeros`, dtype: "I32", shape: [G, (out * r.bits) / 32], data: t.qzeros },
      { name: `${r.name}.scales`, dtype: "F16", shape: [G, out], data: f32ToF16(t.scales) },
    );
    if (gIdx || r.gIdx) tensors.push({ name: `${r.name}.g_idx`, dtype: "I32", shape: [inp], data: t.gIdx });
  }
  for (const [name, data] of folded) {
    tensors.push({ name, dtype: "F32", shape: [data.length], data: Float32Array.from(data) });
  }
  await writeQuantizedCheckpoint(srcDir, outDir, records.map((r) => r.name), tensors, qc, extra, metadata);
}

/** One quantized layer of a GPTQ checkpoint as a record (codes unpacked, zeros restored). */
export async function readGptqLayer(
  ckpt: Checkpoint,
  name: string,
  shape: [number, number],
  q: Pick<GptqQuantConfig, "bits" | "group_size"> & { desc_act?: boolean },
): Promise<QuantRecord> {
  const [out, inp] = shape, b = q.bits;
  const g = q.group_size === -1 ? inp : q.group_size;
  if (inp % g) throw new Error(`${ckpt.dir}: ${name}: in-features ${inp} not divisible by group_size ${g}`);
  const G = inp / g;
  const raw = (suffix: string, dtype: string, want: number[]) =>
    readCheckedTensor(
      ckpt,
      "GPTQ",
      name,
      suffix,
      dtype,
      want,
      `${b} bits, group size ${q.group_size}, layer [${shape}]`,
    );
  const t: GptqTensors = {
    qweight: new Int32Array((await raw("qweight", "I32", [(inp * b) / 32, out])).buffer),
    qzeros: new Int32Array((await raw("qzeros", "I32", [G, (out * b) / 32])).buffer),
    scales: f16ToF32(new Uint16Array((await raw("scales", "F16", [G, out])).buffer)),
    // g_idx is optional where groups are in order: auto-round's auto_gptq packing (and GPTQModel
    // without desc_act) omit it. An act-order checkpoint without one cannot be decoded.
    gIdx: ckpt.has(`${name}.g_idx`)
      ? new Int32Array((await raw("g_idx", "I32", [inp])).buffer)
      : orderedGroups(ckpt.dir, name, inp, g, q.desc_act === true),
  };
  const r = unpackGptq(name, t, shape, b, g);
  for (const v of t.scales) {
    if (!Number.isFinite(v)) throw new Error(`${ckpt.dir}: ${name}.scales holds ${v}`);
  }
  return r;
}

function orderedGroups(dir: string, name: string, inp: number, g: number, descAct: boolean) {
  if (descAct) throw new Error(`${dir}: ${name}: desc_act is true but the checkpoint has no ${name}.g_idx`);
  return Int32Array.from({ length: inp }, (_, k) => Math.floor(k / g));
}

/** Layers with a zero-point of 0: v1 stores zero − 1, which GPTQModel's v1 → v2 (+1) overflows. */
export function v1ZeroWraps(records: QuantRecord[]): string[] {
  return records.filter((r) => r.zeros?.some((z) => z === 0)).map((r) => r.name);
}

/** GPTQ v1 and auto-round (auto_gptq packing) checkpoints, for the model loader. */
export const GPTQ_FORMAT: LayerFormat = {
  quantMethods: ["gptq", "auto-round"],
  tensors: () => ["qweight", "qzeros", "scales"],
  packed: (ckpt, name) => ckpt.has(`${name}.qweight`),
  async read(gpu, ckpt, name, shape, q, bias) {
    const r = await readGptqLayer(ckpt, name, shape, q as GptqQuantConfig);
    r.bias = bias;
    return QuantLinear.fromRecord(gpu, r);
  },
  row: (q) => ({
    method: q.quant_method === "auto-round" ? "autoround" : q.quant_method,
    bits: (q as GptqQuantConfig).bits,
    group_size: (q as GptqQuantConfig).group_size,
  }),
};
