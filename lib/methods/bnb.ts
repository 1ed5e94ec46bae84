// bitsandbytes' methods: "nf4" and "fp4" (blockwise 4-bit codebooks with optional double
// quantization of the absmax values, lib/quant/bnb.ts) and "bnb-int8" (LLM.int8(): row-wise int8
// with an FP path for outlier input columns, lib/quant/llm_int8.ts). All export bitsandbytes'
// serialized layouts (lib/quant/export_bnb.ts).

import { z } from "zod";
import { quantizeBnb4 } from "../quant/bnb.ts";
import { exportBnb } from "../quant/export_bnb.ts";
import { quantizeInt8 } from "../quant/llm_int8.ts";
import { flagValues, groupLabel, type Method, type Setting } from "./contract.ts";

const BNB4_FLAGS = {
  "double-quant": {
    schema: z.string().default("on").transform((s, ctx) => {
      const v = s.split(",").map((x) => x.trim());
      if (v.some((x) => x !== "on" && x !== "off")) {
        ctx.addIssue({ code: "custom", message: `--double-quant takes on, off or on,off; got "${s}"` });
        return z.NEVER;
      }
      return v.map((x) => x === "on");
    }),
    value: "LIST",
    help: "on, off or on,off: 8-bit quantization of the absmax values (default on, as QLoRA)",
  },
};

const INT8_FLAGS = {
  "int8-threshold": {
    schema: z.coerce.number().min(0).default(6),
    value: "X",
    help: "bnb-int8 (LLM.int8()): input columns with any |x| ≥ X take the FP path\n" +
      "(default 6.0 as the paper and transformers; 0 = no decomposition)",
  },
};

/** bitsandbytes' default blocksize (and QLoRA's): the group size when --group-size is absent. */
const BLOCKSIZE = 64;

function bnb4(type: "nf4" | "fp4"): Method {
  return {
    name: type,
    summary: `bitsandbytes ${
      type === "nf4" ? "NormalFloat4 (QLoRA)" : "FP4"
    }: blockwise absmax 4-bit codebook`,
    // One help section for both 4-bit types and LLM.int8 (the flags are shared by nf4 and fp4).
    ...(type === "nf4"
      ? {
        help: {
          title:
            `bitsandbytes 4-bit (nf4, fp4; calibration-free; --group-size is the blocksize, default ${BLOCKSIZE}):`,
        },
      }
      : {}),
    flags: BNB4_FLAGS,
    protocolFlags: [],
    bits: null,
    defaultGroupSize: BLOCKSIZE,
    calibrated: false,
    quantizesHead: true,
    settings: (o) =>
      (o["group-size"] ?? [BLOCKSIZE]).flatMap((groupSize) =>
        flagValues(o, BNB4_FLAGS)["double-quant"].map((doubleQuant): Setting => ({
          method: type,
          bits: 4,
          groupSize,
          doubleQuant,
        }))
      ),
    exportName: (s) => `${type}-g${s.groupSize}${s.doubleQuant ? "-dq" : ""}`,
    label: (r) => {
      const dq = r.method_options?.double_quant === true ? " dq" : "";
      return { column: `W4 ${groupLabel(r.group_size)}${dq}`, series: `${type} g${r.group_size}${dq}` };
    },
    async quantize(model, s, o) {
      const quant = await quantizeBnb4(model, {
        type,
        blocksize: s.groupSize!,
        doubleQuant: s.doubleQuant,
        quantizeHead: o["quantize-head"],
      });
      const opts = { double_quant: s.doubleQuant, blocksize: s.groupSize, nested_blocksize: 256 };
      return {
        quant,
        methodOptions: () => Promise.resolve(opts),
        export: (src, dir, meta) => exportBnb(src, dir, quant.records, null, meta),
      };
    },
  };
}

export const nf4 = bnb4("nf4");
export const fp4 = bnb4("fp4");

export const bnbInt8: Method = {
  name: "bnb-int8",
  summary: "bitsandbytes LLM.int8(): row-wise int8 weights, outlier input columns in FP",
  flags: INT8_FLAGS,
  bits: null,
  calibrated: false,
  quantizesHead: true,
  settings: () => [{ method: "bnb-int8", bits: 8, groupSize: -1 }],
  exportName: () => "bnb-int8",
  label: () => ({ column: "int8", series: "bnb-int8" }),
  async quantize(model, _s, o) {
    const threshold = flagValues(o, INT8_FLAGS)["int8-threshold"];
    const r = await quantizeInt8(model, threshold, o["quantize-head"]);
    return {
      quant: r,
      methodOptions: async () => {
        const counts = await Promise.all(r.layers.map(async (l) => [l.name, await l.outlierColumns()]));
        return {
          threshold,
          // bitsandbytes' MatMul8bitLt quantizes A.to(float16); the outlier columns stay in x's dtype
          activations_quantized_from: "float16",
          outlier_columns: Object.fromEntries(counts),
        };
      },
      export: (src, dir, meta) => exportBnb(src, dir, r.records, { threshold }, meta),
    };
  },
};
