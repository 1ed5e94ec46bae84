// An HQQ checkpoint directory in the layout hqq's own safetensors writer saves
// (hqq/models/base.py save_to_safetensors: HQQLinear.state_dict with its meta encoded as tensors,
// lib/quant/hqq_meta.ts), and its reader. For every quantized linear `name`:
//   name.W_q    the codes of W viewed as [numel/g, g] (axis 1) or [g, numel/g] (axis 0), packed
//               along that view's dim 0 in hqq's planar format (uint8, or int32 for 3bit_32)
//   name.scale  [numel/g, 1] (axis 1) or [1, numel/g] (axis 0), the dequantization scale
//   name.zero   same shape (float zero-points), W ≈ scale · (W_q − zero)
//   name.{nbits, group_size, axis, shape, packing, unpack_view_dtype, view_as_float, quant_scale,
//        quant_zero, compute_dtype, offload_meta, encoded_state_dict, stores_quant_config,
//        channel_wise, optimize, round_zero}   the meta record, encoded as hqq encodes it.
// scale and zero are float32 with compute_dtype torch.float32 (our solver's precision; hqq casts
// them to its own compute dtype at load). config.json gets transformers' HqqConfig.to_dict()
// (quant_config, skip_modules), which hqq's own writer omits, plus our settings beside it
// (nbits, group_size, axis, compute_dtype, the solver's). Everything else is copied (export.ts).

import type { Checkpoint } from "../io/checkpoint.ts";
import type { HqqQuantConfig } from "../io/config.ts";
import type { TensorToWrite } from "../io/safetensors.ts";
import { writeQuantizedCheckpoint } from "./export.ts";
import { hqqConfigOf, hqqLayerMeta, metaFromConfig } from "./hqq_meta.ts";
import { hqqPacking, hqqSlices, packHqq, unpackHqq } from "./pack/hqq.ts";
import type { QuantRecord } from "./record.ts";
import type { LayerFormat } from "../model/format.ts";
import { hqqRuntimeLinear } from "./hqq.ts";

/** The [rows, cols] view hqq packs: axis 1 → [numel/g, g], axis 0 → [g, numel/g]. */
function view(shape: [number, number], g: number, axis: 0 | 1): [number, number] {
  const numel = shape[0] * shape[1];
  return axis === 1 ? [numel / g, g] : [g, numel / g];
}

// hqq's encode_safetensor_type: bool → uint8 scalar, int → int32 scalar, str → uint8 codes,
// torch.Size → int64 vector.
const enc = {
  bool: (name: string, v: boolean): TensorToWrite => ({
    name,
    dtype: "U8",
    shape: [],
    data: new Uint8Array([+v]),
  }),
  int: (name: string, v: number): TensorToWrite => ({
    name,
    dtype: "I32",
    shape: [],
    data: new Int32Array([v]),
  }),
  str: (name: string, v: string): TensorToWrite => ({
    name,
    dtype: "U8",
    shape: [v.length],
    data: Uint8Array.from(v, (c) => c.charCodeAt(0)),
  }),
  size: (name: string, v: number[]): TensorToWrite => ({
    name,
    dtype: "I64",
    shape: [v.length],
    data: BigInt64Array.from(v, BigInt),
  }),
};

/** One layer's tensors as HQQLinear.state_dict() writes them (encoded_state_dict true). */
function layerTensors(r: QuantRecord, optimize: boolean, roundZero: boolean): TensorToWrite[] {
  const [rows, cols] = view(r.shape, r.groupSize, r.axis);
  const packed = packHqq(r.codes, rows, cols, r.bits);
  const metaShape = r.axis === 1 ? [rows, 1] : [1, cols];
  const packing = hqqPacking(r.bits), n = (k: string) => `${r.name}.${k}`;
  return [
    {
      name: n("W_q"),
      dtype: packed instanceof Int32Array ? "I32" : "U8",
      shape: [packed.length / cols, cols],
      data: packed,
    },
    { name: n("scale"), dtype: "F32", shape: metaShape, data: Float32Array.from(r.scales) },
    { name: n("zero"), dtype: "F32", shape: metaShape, data: Float32Array.from(r.zeros!) },
    enc.int(n("nbits"), r.bits),
    enc.int(n("group_size"), r.groupSize),
    enc.size(n("shape"), r.shape),
    enc.int(n("axis"), r.axis),
    enc.str(n("packing"), packing),
    enc.str(n("unpack_view_dtype"), packing === "3bit_32" ? "torch.int32" : "torch.uint8"),
    enc.bool(n("view_as_float"), false),
    enc.bool(n("quant_scale"), false),
    enc.bool(n("quant_zero"), false),
    enc.str(n("compute_dtype"), "torch.float32"),
    enc.bool(n("offload_meta"), false),
    enc.bool(n("encoded_state_dict"), true),
    enc.bool(n("stores_quant_config"), true),
    enc.bool(n("channel_wise"), true),
    enc.bool(n("optimize"), optimize),
    // How the zeros were initialised (dequantization reads the zeros as stored either way); scales
    // and zeros meta-quantized by us are stored dequantized, so quant_scale/quant_zero stay false.
    enc.bool(n("round_zero"), roundZero),
  ];
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
  const optimize = settings.iters !== 0, roundZero = settings.round_zero === true;
  for (const r of records) {
    if (r.bits !== bits || r.groupSize !== groupSize || r.axis !== axis || !r.zeros) {
      throw new Error(`${r.name}: HQQ export needs every layer at the same bits, group size and axis`);
    }
    tensors.push(...layerTensors(r, optimize, roundZero));
  }
  // transformers' HqqConfig.from_dict reads quant_config and skip_modules; the rest is ours.
  const weightParams = {
    nbits: bits,
    channel_wise: true,
    group_size: groupSize,
    optimize,
    round_zero: roundZero,
    axis,
    view_as_float: false,
  };
  const qc = {
    ...settings,
    quant_method: "hqq",
    quant_config: {
      weight_quant_params: weightParams,
      scale_quant_params: null,
      zero_quant_params: null,
      offload_meta: false,
    },
    skip_modules: records.some((r) => r.name === "lm_head") ? [] : ["lm_head"],
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

/** HQQ checkpoints (ours and hqq's own, which have no quantization_config), for the model loader. */
export const HQQ_FORMAT: LayerFormat = {
  quantMethods: ["hqq"],
  tensors: () => ["W_q", "scale", "zero"],
  packed: (ckpt, name) => ckpt.has(`${name}.W_q`),
  async read(gpu, ckpt, name, shape, q, bias) {
    const r = await readHqqLayer(ckpt, name, shape, q as HqqQuantConfig);
    r.bias = bias;
    return hqqRuntimeLinear(gpu, r);
  },
  detect: (ckpt) => hqqConfigOf(ckpt),
  row: (q) => ({
    method: "hqq",
    bits: (q as HqqQuantConfig).nbits,
    group_size: (q as HqqQuantConfig).group_size,
  }),
};
