// What the model loader asks of a quantized checkpoint format (GPTQ, AWQ, HQQ, bitsandbytes): which
// quantization_config it reads, which tensors a packed layer has, and how to load one. The formats
// live beside their writers (lib/quant/export_*.ts) and are listed by the method registry
// (lib/methods/registry.ts); the loader knows only this interface.

import type { Gpu } from "../gpu/device.ts";
import type { Checkpoint } from "../io/checkpoint.ts";
import type { QuantConfig } from "../io/config.ts";
import type { Linear } from "./linear.ts";

export interface LayerFormat {
  /** The quantization_config.quant_method values it reads. */
  readonly quantMethods: readonly string[];
  /** The tensors (after "<layer>.") every packed layer of a checkpoint with config `q` has. */
  tensors(q: QuantConfig): string[];
  /** Layer `name` is stored packed (not as a plain FP weight the quantizer skipped). */
  packed(ckpt: Checkpoint, name: string, q: QuantConfig): boolean;
  /** Load packed layer `name` [out, in] to the GPU, with its FP bias when it has one. */
  read(
    gpu: Gpu,
    ckpt: Checkpoint,
    name: string,
    shape: [number, number],
    q: QuantConfig,
    bias: Float32Array | undefined,
  ): Promise<Linear>;
  /** A config for a checkpoint of this format that has no quantization_config (hqq's own files). */
  detect?(ckpt: Checkpoint): Promise<QuantConfig | null>;
  /** The row fields of a checkpoint of this format evaluated as loaded. */
  row(q: QuantConfig): { method: string; bits: number; group_size: number | null };
}

/** The format that reads `q`, from `formats`; a config no format reads is refused by name. */
export function formatOf(formats: readonly LayerFormat[], q: QuantConfig): LayerFormat {
  const f = formats.find((f) => f.quantMethods.includes(q.quant_method));
  if (!f) {
    throw new Error(
      `quantization_config.quant_method "${q.quant_method}" has no reader here; read: ${
        formats.flatMap((f) => f.quantMethods).join(", ")
      }`,
    );
  }
  return f;
}
