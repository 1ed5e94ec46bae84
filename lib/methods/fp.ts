// "fp": the model as loaded — the baseline every table compares with (a quantized checkpoint
// evaluated as loaded is an fp cell too: its row says which format it was).

import type { Method } from "./contract.ts";

export const fp: Method = {
  name: "fp",
  summary: "the model as loaded (its own dtype; a quantized checkpoint as it was written)",
  baseline: true,
  flags: {},
  bits: null,
  calibrated: false,
  quantizesHead: true,
  settings: () => [{ method: "fp", bits: null, groupSize: null }],
  label: () => ({ column: "FP", series: "fp" }),
  quantize: () => Promise.resolve({ quant: null, methodOptions: () => Promise.resolve(null) }),
};
