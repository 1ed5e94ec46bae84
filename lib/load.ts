// Load a model folder with every checkpoint format the registry knows (FP, GPTQ, auto-round, AWQ,
// HQQ — ours and hqq's own — and bitsandbytes), and run whole forward passes (lib/model/forward.ts).

import type { Gpu } from "./gpu/device.ts";
import type { Checkpoint } from "./io/checkpoint.ts";
import type { ModelConfig } from "./io/config.ts";
import { loadModelWith, openModelWith } from "./model/forward.ts";
import type { CausalLM } from "./model/model.ts";
import { FORMATS } from "./methods/registry.ts";

export { encodeForward, encodeHidden, logits } from "./model/forward.ts";

/** config.json (with the quantization_config a format derives where there is none) and the checkpoint. */
export function openModel(dir: string): Promise<{ config: ModelConfig; ckpt: Checkpoint }> {
  return openModelWith(dir, FORMATS);
}

/** `stream`: decoder blocks stay in host memory and visit the GPU one at a time (lib/model/stream.ts). */
export function loadModel(gpu: Gpu, dir: string, stream = false): Promise<CausalLM> {
  return loadModelWith(gpu, dir, FORMATS, stream);
}
