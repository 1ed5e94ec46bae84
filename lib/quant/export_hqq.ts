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

export async function readHqqLayer(
  ckpt: Checkpoint,
  name: string,
  shape: [number, number],
  q: HqqQuantConfig,
): Promise<QuantRecord> {
  const g = q.group_size, axis = q.axis;
  const numel = shape[0] * shape[1];
  if (numel % g || (axis === 1 && shape[1] % g)) {
    throw new Error(`${ckpt.dir}: ${name}: group_size ${g} does not divide [${shape}] along axis ${axis}`);
  }
  const [rows, cols] = view(shape, g, axis);
  const packedRows = Math.ceil(rows / hqqSlices(q.nbits));
  const metaShape = axis === 1 ? [rows, 1] : [1, cols];
  const raw = async (suffix: string, dtype: string, want: number[]) => {
    const t = `${name}.${suffix}`;
    if (!ckpt.has(t)) throw new Error(`${ckpt.dir}: HQQ checkpoint has no tensor ${t}`);
    const info = ckpt.info(t);
    if (info.dtype !== dtype || info.shape.join() !== want.join()) {
      throw new Error(`${ckpt.dir}: ${t} is ${info.dtype} [${info.shape}], expected ${dtype} [${want}]`);
    }
    return await ckpt.readBytes(t);
  };
  const is3 = hqqPacking(q.nbits) === "3bit_32";
  const wq = await raw("W_q", is3 ? "I32" : "U8", [packedRows, cols]);
  const codes = unpackHqq(is3 ? new Int32Array(wq.buffer) : new Uint8Array(wq.buffer), rows, cols, q.nbits);
  const scales = new Float32Array((await raw("scale", "F32", metaShape)).buffer);
  const zeros = new Float32Array((await raw("zero", "F32", metaShape)).buffer);
  for (const v of [...scales, ...zeros]) {
    if (!Number.isFinite(v)) throw new Error(`${ckpt.dir}: ${name} has a non-finite scale or zero (${v})`);
  }
  return {
    name,
    shape,
    dtype: "float32",
    bits: q.nbits,
    groupSize: g,
    axis,
    codes,
    scales,
    zeros,
    zeroKind: "float",
    method: "hqq",
  };
}
