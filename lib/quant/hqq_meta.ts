// hqq's per-layer meta record, as hqq's own writers store it beside W_q, scale and zero
// (hqq/core/quantize.py HQQLinear.state_dict; hqq/models/base.py):
//   qmodel.pt (save_quantized): plain pickled values — ints, bools, strs, torch.Size, torch dtypes;
//   model.safetensors (save_to_safetensors): the same values encoded as tensors
//   (encode_safetensor_type): bool → uint8 scalar, int → int32 scalar, float → float32 scalar,
//   str and dtype → uint8 character codes ("torch.float16"), torch.Size → int64 vector.
// Both writers add no quantization_config to config.json: a checkpoint is recognised by its layers.

import type { Checkpoint } from "../io/checkpoint.ts";
import type { HqqQuantConfig } from "../io/config.ts";
import type { TorchValue } from "../io/torch_bin.ts";
import { type HqqPacking, hqqPacking } from "./pack/hqq.ts";

/** What the reader needs of one layer, from its own meta or from config.json's quantization_config. */
export interface HqqLayerMeta {
  nbits: number;
  /** Input columns per group (axis 1) or rows per group (axis 0); hqq's None is the whole row/column. */
  groupSize: number;
  axis: 0 | 1;
  packing: HqqPacking;
  /** W_q stored viewed as a float dtype (hqq's view_as_float): its bytes are the packed codes. */
  viewAsFloat: boolean;
  /** [out, in], when the layer records it. */
  shape?: number[];
  /** hqq's compute dtype without the "torch." prefix (float16 when not recorded). */
  computeDtype: string;
}

type Kind = "int" | "bool" | "str" | "size";

const KINDS: Record<string, Kind> = {
  nbits: "int",
  group_size: "int",
  axis: "int",
  shape: "size",
  packing: "str",
  view_as_float: "bool",
  quant_scale: "bool",
  quant_zero: "bool",
  offload_meta: "bool",
  unpack_view_dtype: "str",
  channel_wise: "bool",
  compute_dtype: "str",
};

/** One meta key of layer `name` (undefined when absent), decoded from either writer's form. */
function metaValue(ckpt: Checkpoint, name: string, key: string): Promise<TorchValue | undefined> {
  const full = `${name}.${key}`;
  const plain = ckpt.value(full);
  if (plain !== undefined) return Promise.resolve(plain);
  if (!ckpt.has(full)) return Promise.resolve(undefined);
  return decodeTensor(ckpt, full, KINDS[key]);
}

async function decodeTensor(ckpt: Checkpoint, full: string, kind: Kind): Promise<TorchValue> {
  const { dtype, shape } = ckpt.info(full);
  const bytes = await ckpt.readBytes(full);
  const bad = () =>
    new Error(`${ckpt.dir}: hqq meta tensor ${full} is ${dtype} [${shape}], not an encoded ${kind}`);
  if (kind === "str") {
    if (dtype !== "U8" || shape.length !== 1) throw bad();
    return String.fromCharCode(...bytes);
  }
  if (kind === "size") {
    if (dtype !== "I64" || shape.length !== 1) throw bad();
    return [...new BigInt64Array(bytes.buffer)].map(Number);
  }
  if (shape.length !== 0) throw bad();
  if (kind === "bool") {
    if (dtype !== "U8") throw bad();
    return bytes[0] !== 0;
  }
  if (dtype === "I32") return new Int32Array(bytes.buffer)[0];
  if (dtype === "F32") return new Float32Array(bytes.buffer)[0];
  throw bad();
}

/**
 * Layer `name`'s meta when the checkpoint carries hqq's per-layer record (null otherwise: our
 * own minimal layout, whose settings are in config.json). Settings this reader cannot decode are
 * refused, naming the layer: quantized scale/zero (hqq's quant_scale / quant_zero meta-quant).
 */
export async function hqqLayerMeta(
  ckpt: Checkpoint,
  name: string,
  shape: [number, number],
): Promise<HqqLayerMeta | null> {
  const v: Record<string, TorchValue | undefined> = {};
  for (const k of Object.keys(KINDS)) v[k] = await metaValue(ckpt, name, k);
  if (v.nbits === undefined) return null;
  const fail = (what: string) => {
    throw new Error(`${ckpt.dir}: hqq layer ${name}: ${what}`);
  };
  const nbits = v.nbits;
  if (!(typeof nbits === "number" && [1, 2, 3, 4, 5, 6, 8].includes(nbits))) {
    fail(`nbits ${JSON.stringify(nbits)} is not read (1–6 or 8)`);
  }
  const axis = v.axis ?? 1;
  if (axis !== 0 && axis !== 1) fail(`axis ${JSON.stringify(axis)} (0 or 1)`);
  if (v.quant_scale === true || v.quant_zero === true) {
    fail("quantized scale/zero (quant_scale / quant_zero) are not read; re-save with plain scale and zero");
  }
  if (v.channel_wise === false) fail("channel_wise false (one scale for the whole tensor) is not read");
  if (v.shape !== undefined && (v.shape as number[]).join() !== shape.join()) {
    fail(`its meta shape [${v.shape}] is not [${shape}] from config.json`);
  }
  const want = hqqPacking(nbits as number);
  const packing = v.packing ?? want;
  if (packing !== want) fail(`packing ${JSON.stringify(packing)} for ${nbits} bits (expected "${want}")`);
  const view = v.unpack_view_dtype;
  const wantView = want === "3bit_32" ? "torch.int32" : "torch.uint8";
  if (view !== undefined && view !== wantView) {
    fail(`unpack_view_dtype ${JSON.stringify(view)} with packing ${packing} (expected ${wantView})`);
  }
  const g = v.group_size ?? null;
  if (!(g === null || (typeof g === "number" && Number.isInteger(g) && g > 0))) {
    fail(`group_size ${JSON.stringify(g)}`);
  }
  return {
    nbits: nbits as number,
    groupSize: g === null ? (axis === 1 ? shape[1] : shape[0]) : g as number,
    axis: axis as 0 | 1,
    packing: want,
    viewAsFloat: v.view_as_float === true,
    shape: v.shape as number[] | undefined,
    computeDtype: typeof v.compute_dtype === "string" ? v.compute_dtype.replace(/^torch\./, "") : "float16",
  };
}

/** The meta a layer of our own HQQ layout gets from config.json's quantization_config. */
export function metaFromConfig(q: HqqQuantConfig): HqqLayerMeta {
  return {
    nbits: q.nbits,
    groupSize: q.group_size,
    axis: q.axis,
    packing: hqqPacking(q.nbits),
    viewAsFloat: false,
    computeDtype: q.compute_dtype,
  };
}

/**
 * A checkpoint written by hqq itself carries no quantization_config: one is derived from its
 * first layer with a meta record (every layer is still read by its own meta), or null.
 */
export async function hqqConfigOf(ckpt: Checkpoint): Promise<HqqQuantConfig | null> {
  for (const n of ckpt.names()) {
    if (!n.endsWith(".W_q")) continue;
    const layer = n.slice(0, -".W_q".length);
    const shape = (await metaValue(ckpt, layer, "shape")) as number[] | undefined;
    if (!shape || shape.length !== 2) continue;
    const m = await hqqLayerMeta(ckpt, layer, shape as [number, number]);
    if (!m) continue;
    return {
      quant_method: "hqq",
      nbits: m.nbits,
      group_size: m.groupSize,
      axis: m.axis,
      compute_dtype: m.computeDtype,
      layout: "hqq",
    } as HqqQuantConfig;
  }
  return null;
}
