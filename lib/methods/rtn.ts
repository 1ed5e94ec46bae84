// "rtn": round-to-nearest, every linear on its own (lib/quant/rtn.ts) — the baseline of the GPTQ
// and AWQ papers, on either's grid.

import { z } from "zod";
import { quantizeRtn } from "../quant/rtn.ts";
import { checkUniform } from "../quant/uniform.ts";
import { flagValues, type Method, type Setting } from "./contract.ts";

/** The uniform quantizers' bit widths (GPTQ, AWQ and AutoRound take the same). */
export const UNIFORM_BITS = [2, 3, 4, 8] as const;

const flags = {
  /** RTN's grid: GPTQ's (range widened to include 0) or AWQ's pseudo_quantize_tensor (raw min/max). */
  "rtn-grid": {
    schema: z.enum(["include-zero", "minmax"]).default("include-zero"),
    value: "G",
    help: "RTN's grid: include-zero (GPTQ's, default) or minmax (AWQ's\n" +
      "pseudo_quantize_tensor: raw min/max with a zero-point)",
  },
};

/** A uniform grid's setting against one layer [out, in]: the checkLayer of every uniform method. */
export function checkUniformLayer(name: string, shape: [number, number], s: Setting): void {
  checkUniform(name, shape[1], { bits: s.bits!, groupSize: s.groupSize!, sym: false, range: "include-zero" });
}

export const rtn: Method = {
  name: "rtn",
  summary: "round-to-nearest on a uniform grid (the GPTQ and AWQ papers' baseline)",
  help: { title: "RTN (round-to-nearest, each linear on its own; calibration-free):" },
  flags,
  bits: UNIFORM_BITS,
  defaultGroupSize: 128,
  calibrated: false,
  quantizesHead: true,
  checkLayer: checkUniformLayer,
  async quantize(model, s, o) {
    const f = flagValues(o, flags);
    const quant = await quantizeRtn(model, {
      bits: s.bits!,
      groupSize: s.groupSize!,
      range: f["rtn-grid"],
      quantizeHead: o["quantize-head"],
    });
    return { quant, methodOptions: () => Promise.resolve({ grid: f["rtn-grid"] }) };
  },
};
