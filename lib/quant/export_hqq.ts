// An HQQ-style checkpoint directory, and its reader. For every quantized linear `name`, as
// hqq's HQQLinear holds it (hqq/core/quantize.py, bitpack.py):
//   name.W_q    the codes of W viewed as [numel/g, g] (axis 1) or [g, numel/g] (axis 0), packed
//               along that view's dim 0 in hqq's planar format (uint8, or int32 for 3bit_32)
//   name.scale  float32 [numel/g, 1] (axis 1) or [1, numel/g] (axis 0), the dequantization scale
//   name.zero   float32, same shape (float zero-points)
// with W ≈ scale · (W_q − zero); config.json's quantization_config carries nbits, group_size,
// axis, packing and the solver settings. Everything else is copied untouched (export.ts).

import type { Checkpoint } from "../io/checkpoint.ts";
import type { HqqQuantConfig } from "../io/config.ts";
import type { TensorToWrite } from "../io/safetensors.ts";
import { writeQuantizedCheckpoint } from "./export.ts";
import { hqqLayerMeta, metaFromConfig } from "./hqq_meta.ts";
import { hqqPacking, hqqSlices, packHqq, unpackHqq } from "./pack/hqq.ts";
import type { QuantRecord } from "./record.ts";

/** The [rows, cols] view hqq packs: axis 1 → [numel/g, g], axis 0 → [g, numel/g]. */
function view(shape: [number, number], g: number, axis: 0 | 1): [number, number] {
  const numel = shape[0] * shape[1];
  return axis === 1 ? [numel / g, g] : [g, numel / g];
}

export async function exportHqq(
  srcDir: string,
  outDir: string,
  records: QuantRecord[],
  settings: Record<string, unknown>,
  metadata: Record<string, string> = {},
): Promise<void> {
  if (!records.length) throw new Error("HQQ export: no quantized layers");
  const { bits, groupSize, axis } = records[0];
  const tensors: TensorToWrite[] = [];
  for (const r of records) {
    if (r.bits !== bits || r.groupSize !== groupSize || r.axis !== axis || !r.zeros) {
      throw new Error(`${r.name}: HQQ export needs every layer at the same bits, group size and axis`);
    }
    const [rows, cols] = view(r.shape, r.groupSize, r.axis);
    const packed = packHqq(r.codes, rows, cols, r.bits);
    const metaShape = r.axis === 1 ? [rows, 1] : [1, cols];
    tensors.push(
      {
        name: `${r.name}.W_q`,
        dtype: packed instanceof Int32Array ? "I32" : "U8",
        shape: [packed.length / cols, cols],
        data: packed,
      },
      { name: `${r.name}.scale`, dtype: "F32", shape: metaShape, data: Float32Array.from(r.scales) },
      { name: `${r.name}.zero`, dtype: "F32", shape: metaShape, data: Float32Array.from(r.zeros) },
    );
  }
  const qc = {
    ...settings,
    quant_method: "hqq",
    nbits: bits,
    group_size: groupSize,
    axis,
    packing: hqqPacking(bits),
    compute_dtype: "float32",
    view_as_float: false,
  };
  await writeQuantizedCheckpoint(srcDir, outDir, records.map((r) => r.name), tensors, qc, {}, metadata);
}

/**
 * One layer of an HQQ checkpoint: hqq's own (the layer's meta record beside W_q; W_q possibly
 * viewed as a float dtype; scale and zero in any float dtype) or our export (settings from
 * config.json's quantization_config). Shapes, dtypes and values are checked, the layer named.
 */
export async function readHqqLayer(
  ckpt: Checkpoint,
  name: string,
  shape: [number, number],
  q: HqqQuantConfig | null,
): Promise<QuantRecord> {
  const m = await hqqLayerMeta(ckpt, name, shape) ?? (q ? metaFromConfig(q) : null);
  if (!m) throw new Error(`${ckpt.dir}: ${name}: no hqq meta record and no quantization_config`);
  const g = m.groupSize, axis = m.axis;
  const numel = shape[0] * shape[1];
  if (numel % g || (axis === 1 && shape[1] % g)) {
    throw new Error(`${ckpt.dir}: ${name}: group_size ${g} does not divide [${shape}] along axis ${axis}`);
  }
  const [rows, cols] = view(shape, g, axis);
  const packedRows = Math.ceil(rows / hqqSlices(m.nbits));
  const metaShape = axis === 1 ? [rows, 1] : [1, cols];
  const has = (suffix: string) => {
    const t = `${name}.${suffix}`;
    if (!ckpt.has(t)) throw new Error(`${ckpt.dir}: HQQ checkpoint has no tensor ${t}`);
    return { t, info: ckpt.info(t) };
  };
  const is3 = m.packing === "3bit_32";
  const wq = has("W_q");
  const packedBytes = packedRows * cols * (is3 ? 4 : 1);
  const floatView = m.viewAsFloat && ["F16", "BF16", "F32"].includes(wq.info.dtype);
  const shapeOk = floatView
    ? wq.info.shape.reduce((a, b) => a * b, 1) * (wq.info.dtype === "F32" ? 4 : 2) === packedBytes
    : wq.info.dtype === (is3 ? "I32" : "U8") && wq.info.shape.join() === [packedRows, cols].join();
  if (!shapeOk) {
    throw new Error(
      `${ckpt.dir}: ${wq.t} is ${wq.info.dtype} [${wq.info.shape}], expected ${is3 ? "I32" : "U8"} ` +
        `[${packedRows},${cols}]${m.viewAsFloat ? " (or those bytes viewed as a float dtype)" : ""}`,
    );
  }
  const raw = await ckpt.readBytes(wq.t);
  const codes = unpackHqq(is3 ? new Int32Array(raw.buffer) : new Uint8Array(raw.buffer), rows, cols, m.nbits);
  const meta = async (suffix: string) => {
    const { t, info } = has(suffix);
    if (!["F32", "F16", "BF16"].includes(info.dtype) || info.shape.join() !== metaShape.join()) {
      throw new Error(`${ckpt.dir}: ${t} is ${info.dtype} [${info.shape}], expected a float [${metaShape}]`);
    }
    return { data: await ckpt.readF32(t), dtype: info.dtype };
  };
  const scale = await meta("scale"), zero = await meta("zero");
  return {
    name,
    shape,
    dtype: scale.dtype === "F32" ? "float32" : scale.dtype === "F16" ? "float16" : "bfloat16",
    bits: m.nbits,
    groupSize: g,
    axis,
    codes,
    scales: scale.data,
    zeros: zero.data,
    zeroKind: "float",
    method: "hqq",
  };
}
